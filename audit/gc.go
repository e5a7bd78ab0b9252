package audit

import (
	"os"
	"runtime/debug"
)

// GCPercent is the garbage collector's target the audit commands run with.
// An audit is a batch job that allocates much and keeps little: collecting
// a quarter as often as the default (100) costs more memory and saves about
// a tenth of the CPU of a replay (BenchmarkReader_Verify1M).
const GCPercent = 400

// TuneGC sets the garbage collector's target to GCPercent unless the GOGC
// environment variable sets one, and returns the target in force.
func TuneGC() int {
	if v := os.Getenv("GOGC"); v != "" {
		old := debug.SetGCPercent(100)
		debug.SetGCPercent(old)
		return old
	}
	debug.SetGCPercent(GCPercent)
	return GCPercent
}
