package workcopy

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/strand-dev/strand/client"
)

// fetch gets the content of files at a position: from the machine's cache
// when it holds it, else through the service's bulk path (then cached).
// fn is called once per distinct hash, possibly from several goroutines;
// when it wrote the content to a file it returns that file's path, and the
// cache links to it rather than write the content a second time.
func (w *Copy) fetch(ctx context.Context, position uint64, files []client.FileRef, fn func(hash string, data []byte) (string, error)) error {
	seen := map[string]bool{}
	var distinct, misses []client.FileRef
	for _, f := range files {
		if seen[f.Hash] {
			continue
		}
		seen[f.Hash] = true
		distinct = append(distinct, f)
	}
	hits := distinct
	if w.cache == nil {
		hits, misses = nil, distinct
	}
	// The cache is read a few entries at a time (file creation is what
	// costs); an entry missing or damaged is a miss.
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	work := make(chan client.FileRef)
	for range min(runtime.GOMAXPROCS(0)*4, len(hits)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				data, ok, err := w.cache.Get(f.Hash)
				if err == nil && ok {
					_, err = fn(f.Hash, data)
				}
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				if err == nil && !ok {
					misses = append(misses, f)
				}
				mu.Unlock()
			}
		}()
	}
	for _, f := range hits {
		work <- f
	}
	close(work)
	wg.Wait()
	if first != nil {
		return first
	}
	if len(misses) == 0 {
		return nil
	}
	if err := w.remote(); err != nil {
		return err
	}
	err := w.client.FetchContent(ctx, w.Head.Session, client.AtPosition(position), misses, 0, func(hash string, data []byte) error {
		written, err := fn(hash, data)
		if err != nil || w.cache == nil {
			return err
		}
		if written != "" {
			err = w.cache.Link(hash, written)
		} else {
			err = w.cache.Put(hash, data)
		}
		if err != nil {
			return fmt.Errorf("cache %s: %w", hash, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fetch content at %d: %w", position, err)
	}
	return nil
}
