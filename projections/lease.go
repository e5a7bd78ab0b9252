package projections

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// lease decides which instance folds a batch projection (batchacks.go): a
// key of the control bucket, lease.<stream>.<projection>, that its holder
// writes again every second (compare-and-set on its revision). An instance
// that finds the key missing creates it; one that sees the same revision
// for ttl (measured on its own clock, so the instances' clocks need not
// agree) takes it over with a compare-and-set on that revision: of several
// standing by, one wins. A holder whose write is refused lost it and stops
// folding; one that cannot write at all for ttl gives it up too. A holder
// that stops deletes the key, and the next instance takes over within a
// second.
type lease struct {
	kv  jetstream.KeyValue
	key string
	id  []byte
	ttl time.Duration

	held bool
	// rev is the holder's revision (held), or the revision last seen
	// (standing by); since is when it was written or first seen.
	rev   uint64
	since time.Time
}

func newLease(kv jetstream.KeyValue, stream, name string, ttl time.Duration) *lease {
	return &lease{kv: kv, key: leaseKey(stream, name), id: []byte(holderID()), ttl: ttl}
}

func leaseKey(stream, name string) string { return "lease." + controlKey(stream, name) }

// holderID names a lease's holder for operators (the status shows it):
// host and process, and a unique suffix for runners of one process.
func holderID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), nuid.Next())
}

// try takes the lease if it is free or was not renewed for ttl.
func (l *lease) try(ctx context.Context) bool {
	e, err := l.kv.Get(ctx, l.key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		rev, err := l.kv.Create(ctx, l.key, l.id)
		return err == nil && l.take(rev)
	case err != nil:
		return false
	}
	if e.Revision() != l.rev {
		l.rev, l.since = e.Revision(), time.Now()
		return false
	}
	if time.Since(l.since) < l.ttl {
		return false
	}
	rev, err := l.kv.Update(ctx, l.key, l.id, e.Revision())
	return err == nil && l.take(rev)
}

func (l *lease) take(rev uint64) bool {
	l.held, l.rev, l.since = true, rev, time.Now()
	return true
}

// renew writes the lease again; false when it is lost.
func (l *lease) renew(ctx context.Context) bool {
	rev, err := l.kv.Update(ctx, l.key, l.id, l.rev)
	switch {
	case err == nil:
		l.rev, l.since = rev, time.Now()
		return true
	case isRevisionMismatch(err) || time.Since(l.since) > l.ttl:
		// Taken over or deleted; or unwritable for so long that another
		// instance may have taken it.
		l.held, l.rev, l.since = false, 0, time.Now()
		return false
	}
	return true
}

// release deletes the lease so that an instance standing by takes over
// at once.
func (l *lease) release(ctx context.Context) {
	if !l.held {
		return
	}
	_ = l.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev))
	l.held, l.rev = false, 0
}

func isRevisionMismatch(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongLastSeq(err)
}
