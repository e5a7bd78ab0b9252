package streams

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

func busStreamConfig(c Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              names.BusStream,
		Description:       "Strand message bus: recent history per session topic (coordination, not state)",
		Subjects:          []string{names.BusPrefix + ">"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          c.Replicas,
		MaxMsgsPerSubject: int64(c.BusHistory),
		MaxAge:            c.BusMaxAge,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
	}
}

// BusMsg is domain.BusMsg (the contracts own the types that cross them).
type BusMsg = domain.BusMsg

// BusPublish publishes a message to a topic and waits until the history
// stream stored it.
func (st *Store) BusPublish(ctx context.Context, subject string, data []byte, hdr map[string][]string) (uint64, error) {
	m := nats.NewMsg(subject)
	m.Data = data
	for k, v := range hdr {
		m.Header[k] = v
	}
	ack, err := st.js.PublishMsg(ctx, m, jetstream.WithExpectStream(names.BusStream))
	if err != nil {
		return 0, domain.Wrap(fmt.Errorf("publish %s: %w", subject, err), "bus publish")
	}
	return ack.Sequence, nil
}

// BusReplay returns the retained history of a topic, oldest first, at most
// limit messages (the newest ones).
func (st *Store) BusReplay(ctx context.Context, subject string, limit int) ([]BusMsg, error) {
	stream, info, err := st.streamInfo(ctx, names.BusStream, subject, "bus stream info")
	if err != nil {
		return nil, err
	}
	n := info.State.Subjects[subject]
	if n == 0 {
		return []BusMsg{}, nil
	}
	skip := uint64(0)
	if n > uint64(limit) {
		skip = n - uint64(limit)
	}
	var cons jetstream.Consumer
	err = retry(ctx, "bus replay consumer", func(ctx context.Context) error {
		var err error
		cons, err = stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
		return err
	})
	if err != nil {
		return nil, domain.Wrap(err, "bus replay consumer")
	}
	// Each fetch of an ordered consumer may replace its server-side
	// consumer: delete the one current at the end, not the first.
	defer func() {
		if ci := cons.CachedInfo(); ci != nil {
			stream.DeleteConsumer(context.Background(), ci.Name) //nolint:errcheck // ordered consumers also expire
		}
	}()
	out := []BusMsg{}
	for seen := uint64(0); ; {
		batch, err := cons.FetchNoWait(500)
		if err != nil {
			return nil, domain.Wrap(err, "bus replay")
		}
		got := 0
		var pending uint64
		for msg := range batch.Messages() {
			got++
			seen++
			md, err := msg.Metadata()
			if err != nil {
				return nil, domain.Wrap(err, "bus replay")
			}
			pending = md.NumPending
			if seen > skip {
				out = append(out, BusMsg{Sequence: md.Sequence.Stream, Time: md.Timestamp, Data: msg.Data(), Header: msg.Headers()})
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, domain.Wrap(err, "bus replay")
		}
		if got == 0 || pending == 0 || len(out) >= limit {
			return out, nil
		}
	}
}
