package mount

import (
	"sync"
	"time"
)

// Crash stops the mount the way a killed process stops: nothing is
// flushed; only what the journal holds survives.
func (m *Mount) Crash() {
	m.stopped.Do(func() {
		m.cancel()
		_ = ForceUnmount(m.opts.Dir)
		m.wg.Wait()
		if m.journal != nil {
			m.journal.leaveSpares()
			m.journal.close()
		}
	})
	m.finish()
}

// leaveSpares stops making spare staging files and leaves those made on
// disk, as a killed mount process would.
func (j *journal) leaveSpares() {
	if j.stopSpares != nil {
		close(j.stopSpares)
		<-j.sparesDone
		j.stopSpares = nil
	}
}

// JournalDir is where the mount's journal is.
func (m *Mount) JournalDir() string { return m.journal.dir }

// WaitSpares waits until the journal has all its spare staging files ready
// (no goroutine of the mount is creating one), for up to d; it reports
// whether it got there.
func (m *Mount) WaitSpares(d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if m.journal == nil || len(m.journal.spares) == numSpares {
			return true
		}
	}
	return false
}

// Staged counts the files whose staging copy the mount holds (written
// here and not yet moved into the cache).
func (m *Mount) Staged() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	var walk func(e *entry)
	walk = func(e *entry) {
		if e.staged != nil {
			n++
		}
		for _, c := range e.children {
			walk(c)
		}
	}
	walk(m.root)
	return n
}

// Recycled is how many emptied staging files wait to be taken again.
func (m *Mount) Recycled() int { return len(m.journal.recycled) }

// WriteDuringUploads makes the next n flush attempts that do not hold the
// file they flush write p at off into it between their snapshot and their
// uploads, as a process writing the file meanwhile would; it returns how
// many it made so far.
func (m *Mount) WriteDuringUploads(p []byte, off int64, n int) func() int {
	var made int
	var mu sync.Mutex
	m.afterSnapshot = func(st *staged) {
		mu.Lock()
		defer mu.Unlock()
		if made < n {
			made++
			if _, err := st.writeAt(p, off); err != nil {
				panic(err)
			}
		}
	}
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return made
	}
}

// HashedBytes is how many bytes of staging files m's flushes hashed.
func (m *Mount) HashedBytes() int64 { return m.hashedBytes.Load() }

// AfterManifest sets a function called between the live refresh's read
// of the head's tree and its use.
func (m *Mount) AfterManifest(fn func()) { m.afterManifest = fn }
