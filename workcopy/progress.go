package workcopy

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progress prints "\r<what>: n/total" to w every 200 ms while work goes on,
// and a last line at the end; with a nil w it counts silently.
type progress struct {
	n     atomic.Int64
	total int64
	what  string
	w     io.Writer
	stop  chan struct{}
	done  sync.WaitGroup
}

func startProgress(w io.Writer, what string, total int) *progress {
	p := &progress{total: int64(total), what: what, w: w, stop: make(chan struct{})}
	if w == nil {
		return p
	}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				fmt.Fprintf(p.w, "\r%s: %d/%d", p.what, p.n.Load(), p.total)
			}
		}
	}()
	return p
}

func (p *progress) add(n int) { p.n.Add(int64(n)) }

func (p *progress) finish() {
	if p.w == nil {
		return
	}
	close(p.stop)
	p.done.Wait()
	fmt.Fprintf(p.w, "\r%s: %d/%d, done\n", p.what, p.n.Load(), p.total)
}
