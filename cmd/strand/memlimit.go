package main

import (
	"fmt"
	"math"
	"runtime/debug"
	"strings"
)

// The Go runtime lets the heap grow to twice what its last collection
// found live (GOGC=100) and never returns to a budget by itself: with the
// state caches holding the live heap near --state-memory, the process's
// RSS was 2-2.4 times that, more on a starved machine, where collections
// start late (docs/operations.md, "Soak findings"). A soft memory limit
// (runtime/debug.SetMemoryLimit) makes the collector run sooner as the
// process's memory nears it, so RSS stays near the limit while the live
// heap fits well under it; past that the runtime caps the collector's CPU
// (about half) rather than fail, and memory grows beyond the limit.

// memoryLimit returns the soft memory limit strand serve sets: flag
// ("" or "auto": twice the state budget; "off": none; else a size), and
// whether it sets one.
func memoryLimit(flag string, stateMemory int64) (int64, bool, error) {
	switch strings.TrimSpace(flag) {
	case "", "auto":
		return 2 * stateMemory, true, nil
	case "off":
		return 0, false, nil
	}
	n, err := parseSize(flag)
	if err != nil {
		return 0, false, err
	}
	return n, true, nil
}

// setMemoryLimit sets the runtime's soft memory limit to n bytes unless
// one is set already (the GOMEMLIMIT environment variable, read by the
// runtime at start, wins), and returns what the limit is now, where it came
// from, and a function that puts back the one before (strand serve may run
// inside a test binary).
func setMemoryLimit(n int64, set bool) (limit int64, from string, restore func()) {
	prev := debug.SetMemoryLimit(-1)
	switch {
	case prev != math.MaxInt64:
		return prev, "GOMEMLIMIT", func() {}
	case !set:
		return 0, "off", func() {}
	}
	debug.SetMemoryLimit(n)
	return n, "--memory-limit", func() { debug.SetMemoryLimit(prev) }
}

func formatBytes(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%dM", n>>20)
	}
	return fmt.Sprintf("%d", n)
}
