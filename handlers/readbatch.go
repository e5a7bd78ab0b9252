package handlers

import (
	"context"
	"sync"

	"github.com/strand-dev/strand/domain"
)

// MaxReadBatchPaths bounds the paths of one fs.read_batch.
const MaxReadBatchPaths = 1000

// readBatchFetchers is how many blobs one fs.read_batch reads at once.
const readBatchFetchers = 16

// ReadBatchRequest is the body of fs.read_batch: many paths of one session
// at one point, read in one request.
type ReadBatchRequest struct {
	Session string   `json:"session"`
	At      At       `json:"at,omitempty"`
	Paths   []string `json:"paths"`
	// MaxBytes bounds the content of the reply (0: as much as one reply
	// holds).
	MaxBytes int64 `json:"max_bytes,omitempty"`
}

// ReadBatchFile is one path of an fs.read_batch reply. Content is sent once
// per hash in a reply: a later file with a hash sent before has no content.
// More is true when the content is not in this reply (the reply was full,
// or the file alone is larger than a reply): read it with fs.read, or ask
// again. Error is set, and nothing else but Path, for a path that cannot
// be read (not_found, invalid_argument).
type ReadBatchFile struct {
	Path    string       `json:"path"`
	Kind    string       `json:"kind,omitempty"`
	Size    int64        `json:"size,omitempty"`
	Mode    uint32       `json:"mode,omitempty"`
	Hash    string       `json:"hash,omitempty"`
	Target  string       `json:"target,omitempty"`
	Content []byte       `json:"content,omitempty"`
	More    bool         `json:"more,omitempty"`
	Error   *ErrorDetail `json:"error,omitempty"`
}

// ReadBatchReply answers fs.read_batch: the files in the order asked, at
// one position.
type ReadBatchReply struct {
	Files    []ReadBatchFile `json:"files"`
	Position uint64          `json:"position"`
}

func (s *Service) fsReadBatch(c *call) (any, error) {
	var req ReadBatchRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if len(req.Paths) == 0 {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "paths must hold at least one path")
	}
	if len(req.Paths) > MaxReadBatchPaths {
		return nil, domain.Errorf(domain.CodeTooLarge, "at most %d paths in one read_batch", MaxReadBatchPaths)
	}
	if req.MaxBytes < 0 {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "max_bytes must not be negative")
	}
	budget := s.maxContent()
	if req.MaxBytes > 0 {
		budget = min(budget, req.MaxBytes)
	}
	sess, err := c.resolveAt(id, req.At)
	if err != nil {
		return nil, err
	}
	reply := ReadBatchReply{Files: make([]ReadBatchFile, len(req.Paths)), Position: sess.Position}
	// Decide first which files carry content (each hash once, in order,
	// while the budget lasts), then read those blobs in parallel.
	sent := map[domain.Hash]int{}
	var fetch []int
	for i, raw := range req.Paths {
		f := &reply.Files[i]
		f.Path = raw
		p, err := domain.CleanNonRoot(raw)
		if err != nil {
			f.Error = &ErrorDetail{Code: string(domain.ErrorCode(err)), Message: domain.ErrorMessage(err)}
			continue
		}
		n := sess.Tree.Lookup(p)
		if n == nil {
			f.Error = &ErrorDetail{Code: string(domain.CodeNotFound), Message: "\"" + p + "\" not found"}
			continue
		}
		ev := entryView(p, n)
		f.Path, f.Kind, f.Size, f.Mode, f.Hash, f.Target = ev.Path, ev.Kind, ev.Size, ev.Mode, ev.Hash, ev.Target
		if n.Kind != domain.KindFile || n.Size == 0 {
			continue
		}
		if _, ok := sent[n.Content]; ok {
			continue
		}
		if n.Size > budget {
			f.More = true
			continue
		}
		budget -= n.Size
		sent[n.Content] = i
		if n.Inline() {
			f.Content = n.Data // in the state already (design record 0009)
			continue
		}
		fetch = append(fetch, i)
	}
	if err := s.readBlobs(c.ctx, sess, reply.Files, fetch); err != nil {
		return nil, err
	}
	return reply, nil
}

// readBlobs fills the content of files[i] for every i of which, a few
// blobs at a time.
func (s *Service) readBlobs(ctx context.Context, sess *domain.Session, files []ReadBatchFile, which []int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for w := 0; w < min(readBatchFetchers, len(which)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				n := sess.Tree.Lookup(files[i].Path)
				data, err := s.store.Blobs.Get(ctx, n.Content)
				if err != nil {
					once.Do(func() { first = err; cancel() })
					continue
				}
				files[i].Content = data
			}
		}()
	}
	for _, i := range which {
		select {
		case work <- i:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	return first
}
