package streams

// ScanStream lets the external tests read a stream the way the collector
// does.
var ScanStream = scan

// SetBeforeSweep sets the hook that runs between a collection's mark and
// its sweep.
func (c *Collector) SetBeforeSweep(fn func()) { c.beforeSweep = fn }
