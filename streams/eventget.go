package streams

import (
	"context"
	"errors"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/names"
)

// Reads of the event stream that must see every acknowledged write.
//
// A read at a session's head (a cached head confirmed, a head caught up,
// an event at a position) must see every write any instance has been
// answered for: reads are linearizable (faults/load_test.go checks it with
// porcupine). On a replicated stream only the leader knows that, so these
// reads go to it ($JS.API.STREAM.MSG.GET, answered by the server's
// JetStream API goroutine, in JSON). A direct get ($JS.API.DIRECT.GET) is
// answered inline by the server holding the stream, with the message as
// it is stored: a cached head confirmed on one server takes 20.8-22.6 µs
// with one, 52.8-64.8 µs through the leader's API, and a core NATS
// request 18.3-19.6 µs (BenchmarkStore_HeadCached, docs/benchmarks.md).
// Any replica may answer a direct get, so it is linearizable only where
// the stream has one copy: one replica, and no mirror of it that answers
// direct gets (mirror_direct). The store checks both when it opens and
// reads with direct gets then; a mirror that answers one later is seen by
// its reply's Nats-Stream header when it finds a message, and the store
// goes back to the leader for good (a mirror created while the service
// runs that only ever answers "no message" is not seen: docs/operations.md
// says not to make one).

// DirectReads reports whether the store reads the event stream at the
// head with direct gets (one replica, no mirror answering them) rather
// than through the stream leader. `strand serve` logs it when it starts.
func (st *Store) DirectReads() bool { return st.directEvents.Load() }

// eventGet reads one message of the event stream (seq, last_by_subj or
// next_by_subj) so that it sees every acknowledged write: with a direct
// get where that is safe (directEvents), otherwise through the stream
// leader. A direct get that fails (no responders while the server
// restarts, a stream gone, a timeout) is asked again of the leader, whose
// API and retries give the answer they always gave: the direct get is a
// faster way to the same answer, never another answer.
func (st *Store) eventGet(ctx context.Context, req any) (*StoredMsg, error) {
	if st.directEvents.Load() {
		m, err := directGet(ctx, st.nc, names.EventStream, req)
		switch {
		case err == nil || errors.Is(err, errNoMessage):
			return m, err
		case errors.Is(err, errOtherStream):
			st.directEvents.Store(false)
			st.log.Warn("a mirror of the event stream answers direct gets: reads at the head go through the stream leader from now on", "err", err)
		default:
			st.log.Debug("direct get of the event stream failed; asking the leader", "err", err)
		}
	}
	return leaderGetRequest(ctx, st.nc, names.EventStream, req)
}

// directEventsSafe reports whether a direct get of the event stream sees
// every acknowledged write: the stream answers direct gets, has one
// replica, and no stream of the account mirrors it with mirror_direct.
// Where the streams cannot be listed (a user not allowed to), it says no:
// the leader answers as before.
func directEventsSafe(ctx context.Context, js jetstream.JetStream, events jetstream.Stream, log *slog.Logger) bool {
	cfg := events.CachedInfo().Config
	if !cfg.AllowDirect || cfg.Replicas != 1 {
		return false
	}
	list := js.ListStreams(ctx)
	safe := true
	for info := range list.Info() {
		if m := info.Config.Mirror; m != nil && m.Name == names.EventStream && info.Config.MirrorDirect {
			safe = false
		}
	}
	if err := list.Err(); err != nil {
		log.Warn("cannot list the streams to look for mirrors of the event stream: reads at the head go through the stream leader", "err", err)
		return false
	}
	return safe
}
