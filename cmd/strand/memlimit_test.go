package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestMemoryLimit_Flag(t *testing.T) {
	for _, c := range []struct {
		flag string
		want int64
		set  bool
	}{
		{"auto", 512 << 20, true},
		{"", 512 << 20, true},
		{"off", 0, false},
		{"1G", 1 << 30, true},
	} {
		got, set, err := memoryLimit(c.flag, 256<<20)
		if err != nil || got != c.want || set != c.set {
			t.Errorf("memoryLimit(%q, 256M) = %d, %v, %v; want %d, %v", c.flag, got, set, err, c.want, c.set)
		}
	}
	if _, _, err := memoryLimit("lots", 256<<20); err == nil {
		t.Errorf("memoryLimit(%q): no error", "lots")
	}
}

// The limit is set and put back; one already set (GOMEMLIMIT) is left as
// it is.
func TestMemoryLimit_SetAndRestore(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	debug.SetMemoryLimit(math.MaxInt64)

	limit, from, restore := setMemoryLimit(3<<30, true)
	if got := debug.SetMemoryLimit(-1); got != 3<<30 || limit != 3<<30 || from != "--memory-limit" {
		t.Errorf("runtime limit %d, reported %d from %q; want %d from --memory-limit", got, limit, from, int64(3<<30))
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("after restore: limit %d, want none", got)
	}

	debug.SetMemoryLimit(5 << 30) // as GOMEMLIMIT would
	limit, from, restore = setMemoryLimit(3<<30, true)
	restore()
	if got := debug.SetMemoryLimit(-1); got != 5<<30 || limit != 5<<30 || from != "GOMEMLIMIT" {
		t.Errorf("with a limit set before: runtime limit %d, reported %d from %q; want it left at %d", got, limit, from, int64(5<<30))
	}
	if _, from, _ := setMemoryLimit(0, false); from != "GOMEMLIMIT" {
		t.Errorf("off with a limit set before: from %q", from)
	}
}
