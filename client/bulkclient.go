package client

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/strand-dev/strand/domain"
)

// ReadBatch reads many paths of a session at one point in one request. It
// asks for the MessagePack reply unless the request names an encoding.
func (c *Client) ReadBatch(ctx context.Context, req ReadBatchRequest) (ReadBatchReply, error) {
	var r ReadBatchReply
	if req.Encoding == "" {
		req.Encoding = ManifestMsgpack
	}
	if req.Encoding != ManifestMsgpack {
		return r, c.Call(ctx, FSReadBatch, req, &r)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return r, fmt.Errorf("encode request: %w", err)
	}
	subject := FSReadBatch.Subject(c.Tenant)
	data, err := c.sendRaw(ctx, subject, body)
	if err != nil {
		return r, err
	}
	if r, err = DecodeReadBatch(data); err != nil {
		return r, fmt.Errorf("decode reply of %s: %w", subject, err)
	}
	return r, nil
}

// Has returns which of hashes the tenant may write by reference without
// uploading them again.
func (c *Client) Has(ctx context.Context, hashes []string) (HasReply, error) {
	var r HasReply
	return r, c.Call(ctx, FSHas, HasRequest{Hashes: hashes}, &r)
}

// FileRef names the content of one file of a session: its path there and
// its content hash and size (as fs.manifest lists them).
type FileRef struct {
	Path string
	Hash string
	Size int64
}

// DefaultFetchInflight is how many fs.read_batch requests FetchContent keeps
// in flight.
const DefaultFetchInflight = 4

// FetchContent reads the content of files of one session at one position
// (a position, not a name, so that every request reads the same tree), each
// distinct hash once: small files in fs.read_batch requests of up to a
// reply's worth, inflight of them at once (0: DefaultFetchInflight), large
// ones with fs.read in parts. Every content is checked against its hash,
// then handed to fn, which may be called from several goroutines at once.
func (c *Client) FetchContent(ctx context.Context, session string, at At, files []FileRef, inflight int, fn func(hash string, data []byte) error) error {
	if inflight <= 0 {
		inflight = DefaultFetchInflight
	}
	budget := c.replyBudget()
	var batches [][]FileRef
	var large []FileRef
	seen := map[string]bool{}
	var cur []FileRef
	var curBytes int64
	for _, f := range files {
		if seen[f.Hash] {
			continue
		}
		seen[f.Hash] = true
		if f.Size > budget/2 {
			large = append(large, f)
			continue
		}
		if len(cur) == MaxReadBatchPaths || curBytes+f.Size > budget {
			batches = append(batches, cur)
			cur, curBytes = nil, 0
		}
		cur = append(cur, f)
		curBytes += f.Size
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var first error
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
			cancel()
		}
		mu.Unlock()
	}
	deliver := func(f FileRef, data []byte) error {
		if domain.Sum(data).String() != f.Hash {
			return fmt.Errorf("read %s: content does not match hash %s", f.Path, f.Hash)
		}
		return fn(f.Hash, data)
	}
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	run := func(job func() error) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := job(); err != nil {
				fail(err)
			}
		}()
	}
	for _, b := range batches {
		run(func() error { return c.fetchBatch(ctx, session, at, b, deliver) })
	}
	for _, f := range large {
		run(func() error {
			data, _, err := c.ReadAll(ctx, session, f.Path, at)
			if err != nil {
				return fmt.Errorf("read %s: %w", f.Path, err)
			}
			return deliver(f, data)
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// fetchBatch reads one batch, and again what did not fit in its reply.
func (c *Client) fetchBatch(ctx context.Context, session string, at At, batch []FileRef, deliver func(FileRef, []byte) error) error {
	for len(batch) > 0 {
		paths := make([]string, len(batch))
		for i, f := range batch {
			paths[i] = f.Path
		}
		r, err := c.ReadBatch(ctx, ReadBatchRequest{Session: session, At: at, Paths: paths})
		if err != nil {
			return err
		}
		if len(r.Files) != len(batch) {
			return fmt.Errorf("read_batch answered %d files for %d paths", len(r.Files), len(batch))
		}
		var again []FileRef
		for i, rf := range r.Files {
			f := batch[i]
			switch {
			case rf.Error != nil:
				return &Error{Code: domain.Code(rf.Error.Code), Message: rf.Error.Message}
			case rf.Hash != f.Hash:
				return fmt.Errorf("read %s: hash %s at %s, want %s", f.Path, rf.Hash, at, f.Hash)
			case rf.More:
				again = append(again, f)
			case rf.Size == 0 || rf.Content != nil:
				if err := deliver(f, rf.Content); err != nil {
					return err
				}
			default:
				return fmt.Errorf("read %s: no content and nothing more to come", f.Path)
			}
		}
		if len(again) == len(batch) {
			// Not even the first fit: read it in parts.
			f := again[0]
			data, _, err := c.ReadAll(ctx, session, f.Path, at)
			if err != nil {
				return err
			}
			if err := deliver(f, data); err != nil {
				return err
			}
			again = again[1:]
		}
		batch = again
	}
	return nil
}

// replyBudget is the content one reply can carry on this connection, as
// the service sizes it (see maxContent).
func (c *Client) replyBudget() int64 {
	n := (c.nc.MaxPayload() - 8192) * 3 / 4
	return min(max(n, 4096), 4<<20)
}
