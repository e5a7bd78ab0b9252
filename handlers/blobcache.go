package handlers

import (
	"context"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/strand-dev/strand/domain"
)

// DefaultSearchCacheBytes bounds the blob cache of fs.search.
const DefaultSearchCacheBytes = 64 << 20

// maxCachedBlob is the largest content the cache keeps: one big file must
// not push out a whole tree of small ones.
const maxCachedBlob = 1 << 20

// blobCache keeps the content of recently searched blobs. Content is
// addressed by its hash, so an entry never goes stale; the cache only
// saves the round trips to the blob stream when a search is repeated.
type blobCache struct {
	mu    sync.Mutex
	lru   *simplelru.LRU[domain.Hash, []byte]
	bytes int64
	max   int64
}

func newBlobCache(maxBytes int64) *blobCache {
	c := &blobCache{max: maxBytes}
	// The entry count is bounded by bytes below, not by the LRU itself.
	l, err := simplelru.NewLRU(1<<30, func(_ domain.Hash, v []byte) { c.bytes -= int64(len(v)) })
	if err != nil {
		panic(err) // only for a size <= 0
	}
	c.lru = l
	return c
}

// get returns the content of h, read through fetch on a miss.
func (c *blobCache) get(ctx context.Context, h domain.Hash, fetch func(context.Context, domain.Hash) ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	data, ok := c.lru.Get(h)
	c.mu.Unlock()
	if ok {
		return data, nil
	}
	data, err := fetch(ctx, h)
	if err != nil || int64(len(data)) > maxCachedBlob || c.max <= 0 {
		return data, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.lru.Contains(h) {
		c.lru.Add(h, data)
		c.bytes += int64(len(data))
		for c.bytes > c.max {
			c.lru.RemoveOldest()
		}
	}
	return data, nil
}
