package handlers

import (
	"context"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func (s *Service) fsReadBatch(c *call) (any, error) {
	var req client.ReadBatchRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if len(req.Paths) == 0 {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "paths must hold at least one path")
	}
	if len(req.Paths) > client.MaxReadBatchPaths {
		return nil, domain.Errorf(domain.CodeTooLarge, "at most %d paths in one read_batch", client.MaxReadBatchPaths)
	}
	if req.Encoding == "" {
		req.Encoding = client.ManifestJSON
	}
	if req.Encoding != client.ManifestJSON && req.Encoding != client.ManifestMsgpack {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "encoding must be %q or %q", client.ManifestJSON, client.ManifestMsgpack)
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
	reply := client.ReadBatchReply{Files: make([]client.ReadBatchFile, len(req.Paths)), Position: sess.Position}
	// Decide first which files carry content (each hash once, in order,
	// while the budget lasts), then read those blobs in parallel.
	sent := map[domain.Hash]int{}
	var fetch []int
	for i, raw := range req.Paths {
		f := &reply.Files[i]
		f.Path = raw
		p, err := domain.CleanNonRoot(raw)
		if err != nil {
			f.Error = &client.ErrorDetail{Code: string(domain.ErrorCode(err)), Message: domain.ErrorMessage(err)}
			continue
		}
		n := sess.Tree.Lookup(p)
		if n == nil {
			f.Error = &client.ErrorDetail{Code: string(domain.CodeNotFound), Message: "\"" + p + "\" not found"}
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
	if req.Encoding == client.ManifestMsgpack {
		body, err := client.EncodeReadBatch(&reply)
		if err != nil {
			return nil, domain.Wrap(err, "read_batch")
		}
		return encodedReply{contentType: client.ReadBatchContentType, body: body}, nil
	}
	return reply, nil
}

// readBlobs fills the content of files[i] for every i of which, with
// batched reads of the blob store (each hash is in which once).
func (s *Service) readBlobs(ctx context.Context, sess *domain.Session, files []client.ReadBatchFile, which []int) error {
	if len(which) == 0 {
		return nil
	}
	at := make(map[domain.Hash]int, len(which))
	hs := make([]domain.Hash, 0, len(which))
	for _, i := range which {
		h := sess.Tree.Lookup(files[i].Path).Content
		at[h] = i
		hs = append(hs, h)
	}
	return s.blobs.GetMany(ctx, hs, func(h domain.Hash, data []byte) error {
		if i, ok := at[h]; ok {
			files[i].Content = data
		}
		return nil
	})
}
