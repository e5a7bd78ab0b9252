package client

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// BusRequest is the body of bus.publish and bus.replay.
type BusRequest struct {
	Mutation
	Session string `json:"session"`
	Topic   string `json:"topic"`
	Data    []byte `json:"data,omitempty"`
	Limit   int    `json:"limit,omitempty"`
}

// BusMessageView is one retained bus message.
type BusMessageView struct {
	Sequence uint64    `json:"sequence"`
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor,omitempty"`
	Data     []byte    `json:"data"`
}

// BusReply answers bus.publish (sequence and subject) and bus.replay
// (messages, oldest first).
type BusReply struct {
	Subject  string           `json:"subject"`
	Sequence uint64           `json:"sequence,omitempty"`
	Messages []BusMessageView `json:"messages,omitempty"`
}

// BusPublish publishes a message on a session topic through the service.
func (c *Client) BusPublish(ctx context.Context, req BusRequest) (BusReply, error) {
	var r BusReply
	return r, c.Call(ctx, BusPublish, req, &r)
}

// BusReplay returns a topic's retained history.
func (c *Client) BusReplay(ctx context.Context, req BusRequest) (BusReply, error) {
	var r BusReply
	return r, c.Call(ctx, BusReplay, req, &r)
}

// BusSubscribe subscribes directly to a session topic's plain NATS subject.
func (c *Client) BusSubscribe(session, topic string, fn func(*nats.Msg)) (*nats.Subscription, error) {
	if !domain.ValidTopic(topic) {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "bad topic")
	}
	return c.nc.Subscribe(names.BusSubject(c.Tenant, session, topic), fn)
}
