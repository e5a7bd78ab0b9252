package workcopy

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress draws a bar, "\r<what> [#####-----] n/total", on w every 200
// ms while work goes on, and a last line at the end; with a nil w (not a
// terminal) it counts silently.
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
				fmt.Fprintf(p.w, "\r%s", bar(p.what, p.n.Load(), p.total))
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
	fmt.Fprintf(p.w, "\r%s, done\n", bar(p.what, p.n.Load(), p.total))
}

// barWidth is the number of cells of a progress bar.
const barWidth = 30

// bar renders one line of progress: what, a bar of barWidth cells, n/total.
func bar(what string, n, total int64) string {
	filled := barWidth
	if total > 0 {
		filled = int(min(max(n, 0), total) * barWidth / total)
	}
	return fmt.Sprintf("%s [%s%s] %d/%d", what, strings.Repeat("#", filled), strings.Repeat("-", barWidth-filled), n, total)
}
