package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// Blob garbage collection: mark and sweep over the content-addressed blob
// store, safe while writers run.
//
// A blob is live when something retained names it: an event of any session
// (its write and batch operations), a source revision (its tree blob and
// the contents the tree names), a snapshot reference, or the chunk index of
// a blob that stays. Everything a session's tree can hold came from one of
// these (its own events, its ancestors' up to the fork points, or the
// source revision it started from), so a snapshot body's entries need no
// marking of their own.
//
// Writers store content before the event (or revision, or snapshot
// reference) that names it, and name it soon after: within T, the longest
// a request or an import job runs. Grace must exceed T. Each run:
//
//  1. takes M, the server's time (the time stamp of a run marker it
//     publishes), and only then reads what names blobs (events, sources,
//     snapshot references), so everything stored before M is seen;
//  2. keeps every blob that is named or younger than M - Grace (a blob
//     stored at t and named after M has t > M - T > M - Grace);
//  3. condemns each other blob: a record (names.CondemnedSubject) with the
//     sequence of the blob's message and the time M;
//  4. deletes a blob condemned by an earlier run at least Grace ago, by
//     the sequence in its record (JetStream's DeleteMsg removes exactly that
//     message), if it is still not named, and leaves the record in place.
//
// Why no live event can name a deleted blob. The danger is a writer that
// finds a blob already stored (its put stores nothing) and names it. Every
// such writer checks for a record before naming the blob (Blobs
// keep) and, when it finds one, stores the blob again: a new message with a
// new sequence, which the delete of step 4 cannot remove, or which puts the
// blob back if the delete came first. A writer that checked before the
// record existed (condemned at c) names the blob by c + T; the run that
// deletes started at M' >= c + Grace > c + T, so it sees that name (step
// 1) and keeps the blob. A writer that checks after the delete finds the
// record still there (it is left for another Grace) and stores the blob
// again. Chunked blobs are kept whole: the chunks of every index that stays
// stay, and writers check each chunk as well as the index.
//
// Source imports store their contents long before the revision names them,
// so while an import job runs (names.JobBucket) a run condemns and
// deletes nothing; so does a run that meets an event or source it cannot
// read. Grace also bounds clock differences between servers (all times are
// server time stamps).

// GCConfig configures a collection.
type GCConfig struct {
	// Grace is how old an unnamed blob must be to be condemned, and how
	// long a condemnation stands before the delete (default 1h). It must
	// exceed the longest request or import job.
	Grace time.Duration
	// DryRun only reports.
	DryRun bool
	// Now, when set, is the run's clock M instead of the server's time
	// stamp on the run marker. Tests set it to let a grace period pass
	// without waiting for it; everything else leaves it nil, because the
	// stamps M is compared with (on blobs and records) are server time.
	// A clock that jumps forward while writers run breaks the argument
	// above: move it only when no writer is between storing content and
	// naming it.
	Now func() time.Time
	Log *slog.Logger
}

// GCReport says what a collection found and did.
type GCReport struct {
	Started      time.Time `json:"started"`
	DryRun       bool      `json:"dry_run"`
	Events       int       `json:"events"`
	SourceEvents int       `json:"source_events"`
	Snapshots    int       `json:"snapshots"`
	Blobs        int       `json:"blobs"`
	BlobBytes    int64     `json:"blob_bytes"`
	Named        int       `json:"named"`
	Young        int       `json:"young"`
	// Condemned were condemned by this run; Waiting were condemned before
	// and wait for their grace; Kept were condemned before and named or
	// stored again since.
	Condemned    int    `json:"condemned"`
	Waiting      int    `json:"waiting"`
	Kept         int    `json:"kept"`
	Deleted      int    `json:"deleted"`
	DeletedBytes int64  `json:"deleted_bytes"`
	Fenced       string `json:"fenced,omitempty"`
	Took         string `json:"took"`
}

// Collector collects the blobs of a store.
type Collector struct {
	st  *Store
	js  jetstream.JetStream
	cfg GCConfig
	// beforeSweep runs between the mark and the sweep (tests race writers
	// against the sweep there).
	beforeSweep func()
}

// NewCollector returns a collector.
func NewCollector(st *Store, cfg GCConfig) *Collector {
	if cfg.Grace <= 0 {
		cfg.Grace = time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Collector{st: st, js: st.JetStream(), cfg: cfg}
}

type blobMsg struct {
	seq    uint64
	at     time.Time
	size   int64
	chunks []domain.Hash
}

type record struct {
	msgSeq uint64 // the record's own sequence on the GC stream
	Condemnation
}

// Run does one collection.
func (c *Collector) Run(ctx context.Context) (GCReport, error) {
	t0 := time.Now()
	rep := GCReport{DryRun: c.cfg.DryRun}
	now, err := c.serverNow(ctx)
	if err != nil {
		return rep, err
	}
	if c.cfg.Now != nil {
		now = c.cfg.Now()
	}
	rep.Started = now
	fence := func(why string) {
		if rep.Fenced == "" {
			rep.Fenced = why
		}
	}
	if why, err := c.runningJob(ctx, now); err != nil {
		return rep, err
	} else if why != "" {
		fence(why)
	}
	named := map[domain.Hash]bool{}
	if err := c.markEvents(ctx, named, &rep, fence); err != nil {
		return rep, err
	}
	if err := c.markSources(ctx, named, &rep, fence); err != nil {
		return rep, err
	}
	if err := c.markSnapshots(ctx, named, &rep); err != nil {
		return rep, err
	}
	blobs, err := c.listBlobs(ctx, &rep, fence)
	if err != nil {
		return rep, err
	}
	records, err := c.listRecords(ctx)
	if err != nil {
		return rep, err
	}
	if c.beforeSweep != nil {
		c.beforeSweep()
	}
	writes := !c.cfg.DryRun && rep.Fenced == ""
	ripe := now.Add(-c.cfg.Grace)
	deletable := func(h domain.Hash, b blobMsg) bool {
		r, ok := records[h]
		return ok && r.Seq == b.seq && !r.At.After(ripe) && !named[h]
	}
	// Chunks of every index that stays, stay.
	kept := map[domain.Hash]bool{}
	for h, b := range blobs {
		if len(b.chunks) > 0 && !deletable(h, b) {
			for _, ch := range b.chunks {
				kept[ch] = true
			}
		}
	}
	for h, b := range blobs {
		r, hasRecord := records[h]
		switch {
		case named[h] || kept[h]:
			rep.Named++
			if hasRecord {
				rep.Kept++
				if !c.cfg.DryRun {
					c.dropRecord(ctx, r)
				}
			}
		case hasRecord && r.Seq != b.seq:
			// Stored again since it was condemned: judge it afresh next time.
			rep.Kept++
			if !c.cfg.DryRun {
				c.dropRecord(ctx, r)
			}
		case hasRecord && r.At.After(ripe):
			rep.Waiting++
		case hasRecord:
			gone := true
			if writes {
				var err error
				if gone, err = c.deleteBlob(ctx, b.seq); err != nil {
					return rep, err
				}
			}
			if !gone {
				rep.Kept++ // stored again between the listing and the delete
				continue
			}
			rep.Deleted++
			rep.DeletedBytes += b.size
		case b.at.After(ripe):
			rep.Young++
		default:
			if writes {
				if err := c.condemn(ctx, h, b.seq, now); err != nil {
					return rep, err
				}
			}
			rep.Condemned++
		}
	}
	// Records of deleted blobs have done their work after another grace.
	for h, r := range records {
		if _, ok := blobs[h]; !ok && r.At.Before(now.Add(-2*c.cfg.Grace)) && !c.cfg.DryRun {
			c.dropRecord(ctx, r)
		}
	}
	rep.Took = time.Since(t0).Round(time.Millisecond).String()
	c.cfg.Log.Info("blob collection", "blobs", rep.Blobs, "named", rep.Named, "condemned", rep.Condemned,
		"deleted", rep.Deleted, "fenced", rep.Fenced, "dry_run", rep.DryRun, "took", rep.Took)
	return rep, nil
}

// serverNow publishes a run marker and returns the server's time stamp on
// it: the run's clock, comparable with the stamps on blobs and records.
func (c *Collector) serverNow(ctx context.Context) (time.Time, error) {
	body, _ := json.Marshal(map[string]any{"dry_run": c.cfg.DryRun, "grace": c.cfg.Grace.String()})
	ack, err := c.js.Publish(ctx, names.GCRunSubject, body)
	if err != nil {
		return time.Time{}, fmt.Errorf("gc: run marker: %w", err)
	}
	s, err := c.js.Stream(ctx, names.GCStream)
	if err != nil {
		return time.Time{}, fmt.Errorf("gc: %w", err)
	}
	m, err := s.GetMsg(ctx, ack.Sequence) // the GC stream has no direct get: this asks its leader
	if err != nil {
		return time.Time{}, fmt.Errorf("gc: read run marker: %w", err)
	}
	return m.Time, nil
}

// runningJob names a source import that is queued or running, with a
// heartbeat within the grace period (a job whose instance died stops
// beating and is declared failed by whoever reads it next).
func (c *Collector) runningJob(ctx context.Context, now time.Time) (string, error) {
	kv, err := c.js.KeyValue(ctx, names.JobBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("gc: jobs: %w", err)
	}
	why := ""
	err = listKV(ctx, kv, func(e jetstream.KeyValueEntry) {
		var j domain.Job
		if json.Unmarshal(e.Value(), &j) == nil && !j.Done() && j.Heartbeat.After(now.Add(-c.cfg.Grace)) && why == "" {
			why = fmt.Sprintf("job %s (%s) is %s", j.ID, j.Kind, j.State)
		}
	})
	if err != nil {
		return "", fmt.Errorf("gc: jobs: %w", err)
	}
	return why, nil
}

// listKV calls fn for every entry of a bucket, and fails unless it saw
// them all within kvListTimeout: a run must never take a listing cut
// short (a watcher stopped, its server gone) for a whole one, nor wait
// for one forever.
func listKV(ctx context.Context, kv jetstream.KeyValue, fn func(jetstream.KeyValueEntry)) error {
	ctx, cancel := context.WithTimeout(ctx, kvListTimeout)
	defer cancel()
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer w.Stop() //nolint:errcheck
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("the listing of %s ended before its last entry", kv.Bucket())
			}
			if e == nil {
				return nil
			}
			fn(e)
		case <-ctx.Done():
			return fmt.Errorf("the listing of %s did not end: %w", kv.Bucket(), ctx.Err())
		}
	}
}

// kvListTimeout bounds a listing of a bucket by the collector.
const kvListTimeout = 2 * time.Minute

// scan reads every message of a stream (matching filter) up to its end
// with an ordered consumer.
func scan(ctx context.Context, s jetstream.Stream, filter string, headersOnly bool, fn func(jetstream.Msg, *jetstream.MsgMetadata) error) error {
	cfg := jetstream.OrderedConsumerConfig{HeadersOnly: headersOnly}
	if filter != "" {
		cfg.FilterSubjects = []string{filter}
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	// Each fetch of an ordered consumer may replace its server-side
	// consumer: delete the one current at the end, not the first.
	defer func() {
		if ci := cons.CachedInfo(); ci != nil {
			s.DeleteConsumer(context.Background(), ci.Name) //nolint:errcheck // ordered consumers also expire
		}
	}()
	for {
		batch, err := cons.FetchNoWait(1000)
		if err != nil {
			return err
		}
		n := 0
		var pending uint64
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				return err
			}
			pending = md.NumPending
			if err := fn(msg, md); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
		if n == 0 || pending == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func (c *Collector) markEvents(ctx context.Context, named map[domain.Hash]bool, rep *GCReport, fence func(string)) error {
	s, err := c.js.Stream(ctx, names.EventStream)
	if err != nil {
		return fmt.Errorf("gc: events: %w", err)
	}
	err = scan(ctx, s, "", false, func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
		rep.Events++
		ev, err := domain.DecodeEvent(m.Data())
		if err != nil {
			fence(fmt.Sprintf("event at %d does not decode", md.Sequence.Stream))
			return nil
		}
		for _, h := range ev.Blobs() {
			named[h] = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gc: read events: %w", err)
	}
	return nil
}

func (c *Collector) markSources(ctx context.Context, named map[domain.Hash]bool, rep *GCReport, fence func(string)) error {
	s, err := c.js.Stream(ctx, names.SourceStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("gc: sources: %w", err)
	}
	trees := map[domain.Hash]bool{}
	err = scan(ctx, s, "", false, func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
		rep.SourceEvents++
		var e domain.SourceEvent
		if err := domain.DecodeMsgpack(m.Data(), &e); err != nil {
			fence(fmt.Sprintf("source event at %d does not decode", md.Sequence.Stream))
			return nil
		}
		if e.Revision == nil {
			return nil
		}
		h, ok := domain.HashFromBytes(e.Revision.Tree)
		if !ok || h.IsZero() {
			return nil
		}
		named[h] = true
		trees[h] = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("gc: read sources: %w", err)
	}
	for h := range trees {
		body, err := c.st.Blobs.Get(ctx, h)
		if err != nil {
			fence(fmt.Sprintf("source tree %s unreadable: %v", h, err))
			continue
		}
		hs, err := TreeBlobContents(body)
		if err != nil {
			fence(fmt.Sprintf("source tree %s: %v", h, err))
			continue
		}
		for _, x := range hs {
			named[x] = true
		}
	}
	return nil
}

func (c *Collector) markSnapshots(ctx context.Context, named map[domain.Hash]bool, rep *GCReport) error {
	kv, err := c.js.KeyValue(ctx, names.SnapshotBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("gc: snapshots: %w", err)
	}
	err = listKV(ctx, kv, func(e jetstream.KeyValueEntry) {
		rep.Snapshots++
		if h, ok := SnapshotBlob(e.Value()); ok {
			named[h] = true
		}
	})
	if err != nil {
		return fmt.Errorf("gc: snapshots: %w", err)
	}
	return nil
}

func (c *Collector) listBlobs(ctx context.Context, rep *GCReport, fence func(string)) (map[domain.Hash]blobMsg, error) {
	s, err := c.js.Stream(ctx, names.BlobStream)
	if err != nil {
		return nil, fmt.Errorf("gc: blobs: %w", err)
	}
	out := map[domain.Hash]blobMsg{}
	prefix := names.BlobSubject("")
	err = scan(ctx, s, "", true, func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
		h, err := domain.ParseHash(strings.TrimPrefix(m.Subject(), prefix))
		if err != nil {
			return nil // not a blob subject
		}
		size, _ := strconv.ParseInt(m.Headers().Get(names.HeaderMsgSize), 10, 64)
		b := blobMsg{seq: md.Sequence.Stream, at: md.Timestamp, size: size}
		if m.Headers().Get(BlobKindHeader) == BlobKindChunks {
			raw, err := s.GetMsg(ctx, b.seq)
			if err == nil {
				b.chunks, err = DecodeChunkIndex(raw.Data)
			} else if isNotFound(err) {
				// Stored again since the listing: keep the new message's
				// chunks, and the blob (sequence 0 matches no record).
				var info BlobInfo
				if info, err = c.st.Blobs.Stat(ctx, h); err == nil {
					b.seq, b.chunks = 0, info.Chunks
				}
			}
			if err != nil {
				fence(fmt.Sprintf("chunk index %s unreadable: %v", h, err))
				return nil
			}
		}
		rep.Blobs++
		rep.BlobBytes += size
		out[h] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gc: list blobs: %w", err)
	}
	return out, nil
}

func (c *Collector) listRecords(ctx context.Context) (map[domain.Hash]record, error) {
	s, err := c.js.Stream(ctx, names.GCStream)
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	out := map[domain.Hash]record{}
	prefix := names.CondemnedSubject("")
	err = scan(ctx, s, prefix+">", false, func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
		h, err := domain.ParseHash(strings.TrimPrefix(m.Subject(), prefix))
		if err != nil {
			return nil
		}
		cd, err := DecodeCondemnation(m.Data())
		if err != nil {
			return nil
		}
		out[h] = record{msgSeq: md.Sequence.Stream, Condemnation: cd}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gc: list condemned: %w", err)
	}
	return out, nil
}

// condemn records the intent to delete a blob's message. The record is
// created only where there is none (a concurrent run loses).
func (c *Collector) condemn(ctx context.Context, h domain.Hash, seq uint64, at time.Time) error {
	body := EncodeCondemnation(Condemnation{Seq: seq, At: at})
	_, err := c.js.Publish(ctx, names.CondemnedSubject(h.String()), body, jetstream.WithExpectLastSequencePerSubject(0))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("gc: condemn %s: %w", h, err)
	}
	return nil
}

// deleteBlob removes exactly the condemned message: one stored again since
// has another sequence and stays.
func (c *Collector) deleteBlob(ctx context.Context, seq uint64) (bool, error) {
	return DeleteMsg(ctx, c.js.Conn(), names.BlobStream, seq)
}

func (c *Collector) dropRecord(ctx context.Context, r record) {
	_, _ = DeleteMsg(ctx, c.js.Conn(), names.GCStream, r.msgSeq)
}

func isNotFound(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrMsgNotFound) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeMessageNotFound)
}
