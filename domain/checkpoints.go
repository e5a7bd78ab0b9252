package domain

import "iter"

// Checkpoints holds a session's checkpoints by name. It is persistent: a
// new state that adds or drops one shares every other with the state
// before, so a checkpoint costs O(log n) however many a session has (a
// plain map would be copied whole for each, quadratic over a history). The
// zero value holds none.
type Checkpoints struct{ m pmap[Checkpoint] }

// CheckpointsOf returns a Checkpoints holding cps.
func CheckpointsOf(cps ...Checkpoint) Checkpoints {
	var c Checkpoints
	for _, cp := range cps {
		c = c.With(cp)
	}
	return c
}

// Get returns the checkpoint called name.
func (c Checkpoints) Get(name string) (Checkpoint, bool) { return c.m.Get(name) }

// Len is the number of checkpoints.
func (c Checkpoints) Len() int { return c.m.Len() }

// All yields the checkpoints in name order.
func (c Checkpoints) All() iter.Seq[Checkpoint] {
	return func(yield func(Checkpoint) bool) {
		c.m.Ascend("", func(_ string, cp Checkpoint) bool { return yield(cp) })
	}
}

// With returns the checkpoints with cp added or replaced.
func (c Checkpoints) With(cp Checkpoint) Checkpoints { return Checkpoints{c.m.Set(cp.Name, cp)} }

// Without returns the checkpoints without the one called name.
func (c Checkpoints) Without(name string) Checkpoints { return Checkpoints{c.m.Delete(name)} }
