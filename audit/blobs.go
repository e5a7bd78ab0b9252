package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// The blob layout (written by streams/blobs.go): one message per blob on
// strand.blob.<sha256hex>. Content up to the writer's chunk size is stored
// raw; larger content as chunks (each a raw blob of its own) plus an index
// message under the hash of the whole content.
const (
	headerBlobKind = names.HeaderBlobKind
	headerBlobSize = names.HeaderBlobSize
	blobRaw        = "raw"
	blobChunks     = "chunks"
)

type chunkIndex struct {
	Chunks [][]byte `msgpack:"c"`
	Sizes  []int64  `msgpack:"s"`
	// States: the SHA-256 state before each chunk and after the last
	// (domain.HashState), which the service resumes from to check a
	// content that begins as this one; none in indexes from before
	// 2026-12-07. A wrong one would make the service hash such a content
	// wrongly, so they are checked too.
	States [][]byte `msgpack:"h"`
}

// errBlobMissing marks a blob the stream does not hold.
var errBlobMissing = errors.New("blob missing")

// blobMsg reads the message of a blob: a direct get first (cheap, may be
// answered by any replica) and, when that finds nothing, a get through the
// stream leader, so that a lagging replica never makes a blob look missing.
func (r *Reader) blobMsg(ctx context.Context, h domain.Hash) (*jetstream.RawStreamMsg, error) {
	subj := blobSubject(h)
	m, err := r.blobs.GetLastMsgForSubject(ctx, subj)
	if err == nil {
		return m, nil
	}
	if !errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	return r.leaderGet(ctx, r.names.Blobs, map[string]any{"last_by_subj": subj})
}

// leaderGet reads one message through the stream leader
// ($JS.API.STREAM.MSG.GET), bypassing direct gets that a lagging replica
// may answer. It returns errBlobMissing when there is no such message.
func (r *Reader) leaderGet(ctx context.Context, stream string, req map[string]any) (*jetstream.RawStreamMsg, error) {
	body, _ := json.Marshal(req)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	resp, err := r.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, body)
	if err != nil {
		return nil, fmt.Errorf("read from %s: %w", stream, err)
	}
	var reply struct {
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs,omitempty"`
			Data    []byte    `json:"data,omitempty"`
			Time    time.Time `json:"time"`
		} `json:"message,omitempty"`
		Error *jetstream.APIError `json:"error,omitempty"`
	}
	if err := json.Unmarshal(resp.Data, &reply); err != nil {
		return nil, fmt.Errorf("read from %s: bad reply: %w", stream, err)
	}
	if reply.Error != nil {
		if reply.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
			return nil, errBlobMissing
		}
		return nil, fmt.Errorf("read from %s: %w", stream, reply.Error)
	}
	if reply.Message == nil {
		return nil, errBlobMissing
	}
	m := &jetstream.RawStreamMsg{Subject: reply.Message.Subject, Sequence: reply.Message.Seq, Data: reply.Message.Data, Time: reply.Message.Time}
	if len(reply.Message.Header) > 0 {
		if m.Header, err = nats.DecodeHeadersMsg(reply.Message.Header); err != nil {
			return nil, fmt.Errorf("read from %s: %w", stream, err)
		}
	}
	return m, nil
}

// BlobError says what is wrong with a blob.
type BlobError struct {
	Hash    domain.Hash
	Missing bool
	Reason  string
}

func (e *BlobError) Error() string {
	if e.Missing {
		return "blob " + e.Hash.String() + " is missing"
	}
	return "blob " + e.Hash.String() + ": " + e.Reason
}

// CopyBlob writes the content of a blob to w, checking every chunk and the
// whole content against their hashes, and returns its size. A *BlobError
// reports a missing or damaged blob; w may have received part of the content
// by then.
func (r *Reader) CopyBlob(ctx context.Context, h domain.Hash, w io.Writer) (int64, error) {
	m, err := r.blobMsg(ctx, h)
	if errors.Is(err, errBlobMissing) {
		return 0, &BlobError{Hash: h, Missing: true}
	}
	if err != nil {
		return 0, err
	}
	bad := func(format string, args ...any) error {
		return &BlobError{Hash: h, Reason: fmt.Sprintf(format, args...)}
	}
	switch kind := m.Header.Get(headerBlobKind); kind {
	case blobRaw:
		if domain.Sum(m.Data) != h {
			return 0, bad("content does not match its hash")
		}
		n, err := w.Write(m.Data)
		return int64(n), err
	case blobChunks:
		var idx chunkIndex
		if err := domain.DecodeMsgpack(m.Data, &idx); err != nil || len(idx.Chunks) != len(idx.Sizes) || len(idx.Chunks) == 0 {
			return 0, bad("chunk index does not decode")
		}
		want, err := strconv.ParseInt(m.Header.Get(headerBlobSize), 10, 64)
		if err != nil {
			return 0, bad("chunk index has no size")
		}
		if len(idx.States) != 0 && (len(idx.States) != len(idx.Chunks)+1 || len(idx.States[0]) != 0) {
			return 0, bad("chunk index records %d hashing states for %d chunks", len(idx.States), len(idx.Chunks))
		}
		sum := sha256.New()
		var total int64
		for i, c := range idx.Chunks {
			ch, ok := domain.HashFromBytes(c)
			if !ok || ch.IsZero() {
				return 0, bad("chunk %d has a bad hash", i)
			}
			cm, err := r.blobMsg(ctx, ch)
			if errors.Is(err, errBlobMissing) {
				return 0, bad("chunk %d (%s) is missing", i, ch)
			}
			if err != nil {
				return 0, err
			}
			if cm.Header.Get(headerBlobKind) != blobRaw {
				return 0, bad("chunk %d (%s) is not a raw blob", i, ch)
			}
			if domain.Sum(cm.Data) != ch {
				return 0, bad("chunk %d (%s) does not match its hash", i, ch)
			}
			if int64(len(cm.Data)) != idx.Sizes[i] {
				return 0, bad("chunk %d has %d bytes, the index says %d", i, len(cm.Data), idx.Sizes[i])
			}
			sum.Write(cm.Data)
			if _, err := w.Write(cm.Data); err != nil {
				return total, err
			}
			total += int64(len(cm.Data))
			if len(idx.States) != 0 && !bytes.Equal(idx.States[i+1], domain.HashState(sum, total)) {
				return total, bad("chunk index records a wrong hashing state after chunk %d", i)
			}
		}
		if total != want {
			return total, bad("chunks hold %d bytes, the index says %d", total, want)
		}
		var got domain.Hash
		sum.Sum(got[:0])
		if got != h {
			return total, bad("chunks do not hash to the blob's hash (%s)", got)
		}
		return total, nil
	default:
		return 0, bad("unknown blob kind %q", kind)
	}
}

// blobRef is an event that names a blob, waiting for the blob's check.
type blobRef struct {
	hash     domain.Hash
	hist     *history
	position uint64
	version  uint64
	path     string
	size     int64 // -1: the event records no size for it
	// what names the reference in messages when it is not a write of path
	// (a file of the source tree a session starts from).
	what string
}

func (ref blobRef) name() string {
	switch {
	case ref.what != "":
		return ref.what
	case ref.path != "":
		return "write of " + ref.path
	}
	return "event"
}

// blobCheck is the check of one blob: run once, however many events name it.
type blobCheck struct {
	done bool
	size int64
	err  error
	refs []blobRef // events waiting for the result
}

// blobChecker checks every blob that events name, each once, on a bounded
// pool of readers running alongside the replay. Results come back as
// findings on the events that named the blobs.
type blobChecker struct {
	r    *Reader
	ctx  context.Context
	jobs chan domain.Hash
	wg   sync.WaitGroup

	mu       sync.Mutex
	checks   map[domain.Hash]*blobCheck
	findings []Finding
	failed   error // an error reading the stream (not a finding)
}

func newBlobChecker(ctx context.Context, r *Reader) *blobChecker {
	n := r.BlobFetch
	if n <= 0 {
		n = DefaultBlobFetch
	}
	c := &blobChecker{r: r, ctx: ctx, jobs: make(chan domain.Hash, 4*n), checks: map[domain.Hash]*blobCheck{}}
	for range n {
		c.wg.Add(1)
		go c.worker()
	}
	return c
}

func (c *blobChecker) worker() {
	defer c.wg.Done()
	for h := range c.jobs {
		size, err := c.r.CopyBlob(c.ctx, h, io.Discard)
		c.mu.Lock()
		chk := c.checks[h]
		chk.done, chk.size = true, size
		var be *BlobError
		switch {
		case err == nil:
		case errors.As(err, &be):
			chk.err = be
		default:
			if c.failed == nil {
				c.failed = err
			}
			chk.err = err
		}
		for _, ref := range chk.refs {
			c.settle(chk, ref)
		}
		chk.refs = nil
		c.mu.Unlock()
	}
}

// settle turns a finished check into a finding for ref, if it failed.
// c.mu is held.
func (c *blobChecker) settle(chk *blobCheck, ref blobRef) {
	var msg string
	switch {
	case chk.err != nil:
		var be *BlobError
		if !errors.As(chk.err, &be) {
			return // reported as an error of the audit, not of the history
		}
		msg = fmt.Sprintf("%s names %s", ref.name(), be.Error())
	case ref.size >= 0 && chk.size != ref.size:
		msg = fmt.Sprintf("%s records size %d, blob %s holds %d bytes", ref.name(), ref.size, ref.hash, chk.size)
	default:
		return
	}
	c.findings = append(c.findings, Finding{
		Tenant: ref.hist.tenant, Session: ref.hist.session, Position: ref.position, Version: ref.version,
		Kind: KindBlob, Message: msg,
	})
}

// check schedules the check of blob h for an event (blocking while the
// pool is full). When the blob was already found whole, it returns its
// size and true, so that the caller can settle later references to it
// without coming here.
func (c *blobChecker) check(h domain.Hash, ref blobRef) (size int64, good bool) {
	c.mu.Lock()
	chk, ok := c.checks[h]
	if ok {
		if chk.done {
			c.settle(chk, ref)
			size, good = chk.size, chk.err == nil
		} else {
			chk.refs = append(chk.refs, ref)
		}
		c.mu.Unlock()
		return size, good
	}
	c.checks[h] = &blobCheck{refs: []blobRef{ref}}
	c.mu.Unlock()
	select {
	case c.jobs <- h:
	case <-c.ctx.Done():
	}
	return 0, false
}

// wait ends the pool and returns the findings and the number of blobs
// checked.
func (c *blobChecker) wait() ([]Finding, int, error) {
	close(c.jobs)
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.ctx.Err(); err != nil {
		return nil, 0, err
	}
	return c.findings, len(c.checks), c.failed
}
