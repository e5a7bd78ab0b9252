package workcopy

import "sync/atomic"

// Figures are what the working copies of this process did since it
// started: a long-running process that uses them (strand mcp with
// run_command, an agent) exports them as Prometheus metrics
// (metrics.NewWorkcopyCollector).
type Figures struct {
	// Checkouts counts the checkouts made; CheckoutFiles and
	// CheckoutBytes the files they wrote and their content.
	Checkouts, CheckoutFiles, CheckoutBytes int64
	// Pushes counts the pushes that succeeded (nothing to push included);
	// PushChanges the local changes they sent, PushBytes the content of
	// the files they wrote, ChunksUploaded and ChunksSkipped the chunks
	// sent and those the service held already.
	Pushes, PushChanges, PushBytes, ChunksUploaded, ChunksSkipped int64
	// Pulls counts the pulls that succeeded; PullUpdated the paths they
	// took or merged, PullConflicts the conflicts they left.
	Pulls, PullUpdated, PullConflicts int64
	// Failures counts the operations that failed, by operation (checkout,
	// push, pull).
	Failures map[string]int64
}

// The operations Failures counts.
const (
	opCheckout = iota
	opPush
	opPull
	opCount
)

var opNames = [opCount]string{"checkout", "push", "pull"}

var counters struct {
	checkouts, checkoutFiles, checkoutBytes                       atomic.Int64
	pushes, pushChanges, pushBytes, chunksUploaded, chunksSkipped atomic.Int64
	pulls, pullUpdated, pullConflicts                             atomic.Int64
	failures                                                      [opCount]atomic.Int64
}

// ProcessFigures returns the figures of this process's working copies.
func ProcessFigures() Figures {
	f := Figures{
		Checkouts: counters.checkouts.Load(), CheckoutFiles: counters.checkoutFiles.Load(), CheckoutBytes: counters.checkoutBytes.Load(),
		Pushes: counters.pushes.Load(), PushChanges: counters.pushChanges.Load(), PushBytes: counters.pushBytes.Load(),
		ChunksUploaded: counters.chunksUploaded.Load(), ChunksSkipped: counters.chunksSkipped.Load(),
		Pulls: counters.pulls.Load(), PullUpdated: counters.pullUpdated.Load(), PullConflicts: counters.pullConflicts.Load(),
		Failures: map[string]int64{},
	}
	for i, name := range opNames {
		f.Failures[name] = counters.failures[i].Load()
	}
	return f
}
