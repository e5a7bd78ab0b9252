package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// requestBatchMax is the most counters one atomic batch carries (the
// server takes 1,000 by default).
const requestBatchMax = 500

// endpointToken spells an endpoint's path as subject tokens: a wildcard
// token of a scoped endpoint ("secret.get.*") cannot be published.
var endpointToken = strings.NewReplacer("*", "%2A", ">", "%3E")

// endpointOfToken reverses endpointToken.
var endpointOfToken = strings.NewReplacer("%2A", "*", "%3E", ">")

// AddRequests adds a batch of request counts to the tenants' counters in
// UsageStream: one atomic batch of increments per requestBatchMax counts,
// so an instance's flush is one or a few round trips whatever it counted.
// The first message of each batch carries the message id id.<n>: a batch
// sent again after an unknown outcome is refused as a duplicate, which
// means it was stored.
func (st *Store) AddRequests(ctx context.Context, id string, counts []domain.RequestCount) error {
	if len(counts) == 0 {
		return nil
	}
	if err := st.ensureUsage(ctx); err != nil {
		return err
	}
	for n := 0; len(counts) > 0; n++ {
		k := min(len(counts), requestBatchMax)
		msgs := make([]*nats.Msg, 0, k)
		for _, c := range counts[:k] {
			m := nats.NewMsg(names.UsageRequestPrefix(c.Tenant) + endpointToken.Replace(c.Endpoint))
			m.Header.Set(names.HeaderIncr, "+"+strconv.FormatUint(c.N, 10))
			msgs = append(msgs, m)
		}
		msgs[0].Header.Set(jetstream.MsgIDHeader, id+"."+strconv.Itoa(n))
		if _, err := jetstreamext.PublishMsgBatch(ctx, st.js, msgs); err != nil && !duplicateBatch(err) {
			return fmt.Errorf("add request counts: %w", err)
		}
		counts = counts[k:]
	}
	return nil
}

// duplicateBatch reports whether a batch was refused because its message
// id was stored before.
func duplicateBatch(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == jetstreamext.JSErrCodeBatchPublishDuplicateMsgID
}

// Requests reads a tenant's request counters: one direct get of the last
// message of each of its counters.
func (st *Store) Requests(ctx context.Context, tenant string) (map[string]uint64, error) {
	if err := st.ensureUsage(ctx); err != nil {
		return nil, err
	}
	prefix := names.UsageRequestPrefix(tenant)
	out := map[string]uint64{}
	msgs, err := jetstreamext.GetLastMsgsFor(ctx, st.js, names.UsageStream, []string{prefix + ">"})
	if err != nil {
		return nil, fmt.Errorf("read request counts: %w", err)
	}
	for m, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read request counts: %w", err)
		}
		n, err := counterValue(m.Data)
		if err != nil {
			return nil, fmt.Errorf("counter %s: %w", m.Subject, err)
		}
		out[endpointOfToken.Replace(strings.TrimPrefix(m.Subject, prefix))] = uint64(n)
	}
	return out, nil
}

// counterValue reads a counter message's value ({"val":"123"}).
func counterValue(data []byte) (int64, error) {
	var v struct {
		Value string `json:"val"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimPrefix(v.Value, "+"), 10, 64)
}
