package handlers

import (
	"errors"
	"sync"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// hasCheckers is how many hashes one fs.has checks at once.
const hasCheckers = 16

func (s *Service) fsHas(c *call) (any, error) {
	var req client.HasRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if len(req.Hashes) == 0 {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "hashes must hold at least one hash")
	}
	if len(req.Hashes) > client.MaxHasHashes {
		return nil, domain.Errorf(domain.CodeTooLarge, "at most %d hashes in one fs.has", client.MaxHasHashes)
	}
	hs := make([]domain.Hash, len(req.Hashes))
	for i, raw := range req.Hashes {
		h, err := domain.ParseHash(raw)
		if err != nil {
			return nil, err
		}
		hs[i] = h
	}
	have := make([]bool, len(hs))
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < min(hasCheckers, len(hs)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				ok, err := s.hasBlob(c, hs[i])
				if err != nil {
					mu.Lock()
					first = errors.Join(first, err)
					mu.Unlock()
					continue
				}
				have[i] = ok
			}
		}()
	}
	for i := range hs {
		work <- i
	}
	close(work)
	wg.Wait()
	if first != nil {
		return nil, first
	}
	reply := client.HasReply{Have: []string{}}
	for i, ok := range have {
		if ok {
			reply.Have = append(reply.Have, hs[i].String())
		}
	}
	return reply, nil
}

// hasBlob reports whether the tenant claimed h and the store holds it.
func (s *Service) hasBlob(c *call, h domain.Hash) (bool, error) {
	if err := s.store.Claimed(c.ctx, c.tenant, []domain.Hash{h}); err != nil {
		if domain.ErrorCode(err) == domain.CodeNotFound {
			return false, nil
		}
		return false, err
	}
	if _, err := s.blobs.Stat(c.ctx, h); err != nil {
		if domain.ErrorCode(err) == domain.CodeNotFound {
			return false, nil
		}
		return false, err
	}
	return true, nil
}
