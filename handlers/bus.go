package handlers

import (
	"context"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/streams"
)

// Bus limits.
const (
	MaxBusMessage      = 256 * 1024
	DefaultReplayLimit = 100
	MaxReplayLimit     = 1000
	headerBusActor     = "Strand-Actor"
	headerBusSession   = "Strand-Session"
)

var topicRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$`)

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

func (c *call) busSubject(req BusRequest) (string, error) {
	id, err := sessionID(req.Session)
	if err != nil {
		return "", err
	}
	if !topicRe.MatchString(req.Topic) {
		return "", domain.Errorf(domain.CodeInvalidArgument, "topic must be 1 to 8 dot-separated tokens of [A-Za-z0-9_-]")
	}
	sess, err := c.svc.store.Peek(c.ctx, c.tenant, id)
	if err != nil {
		return "", err
	}
	if err := readable(sess); err != nil {
		return "", err
	}
	return streams.BusSubject(c.tenant, id, req.Topic), nil
}

func (s *Service) busPublish(c *call) (any, error) {
	var req BusRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if len(req.Data) > MaxBusMessage {
		return nil, domain.Errorf(domain.CodeTooLarge, "a bus message holds at most %d bytes", MaxBusMessage)
	}
	subject, err := c.busSubject(req)
	if err != nil {
		return nil, err
	}
	meta, err := c.meta(req.Mutation)
	if err != nil {
		return nil, err
	}
	hdr := nats.Header{}
	hdr.Set(headerBusActor, meta.Actor)
	hdr.Set(headerBusSession, req.Session)
	if req.RequestID != "" {
		hdr.Set("Nats-Msg-Id", subject+"."+req.RequestID)
	}
	seq, err := s.store.BusPublish(c.ctx, subject, req.Data, hdr)
	if err != nil {
		return nil, err
	}
	return BusReply{Subject: subject, Sequence: seq}, nil
}

func (s *Service) busReplay(c *call) (any, error) {
	var req BusRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Data != nil {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "replay takes no data")
	}
	if req.Limit < 0 || req.Limit > MaxReplayLimit {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "limit must be between 0 and %d", MaxReplayLimit)
	}
	limit := req.Limit
	if limit == 0 {
		limit = DefaultReplayLimit
	}
	subject, err := c.busSubject(req)
	if err != nil {
		return nil, err
	}
	msgs, err := s.store.BusReplay(c.ctx, subject, limit)
	if err != nil {
		return nil, err
	}
	reply := BusReply{Subject: subject, Messages: []BusMessageView{}}
	for _, m := range msgs {
		v := BusMessageView{Sequence: m.Sequence, Time: m.Time.UTC(), Data: m.Data}
		if m.Header != nil {
			v.Actor = m.Header.Get(headerBusActor)
		}
		if v.Data == nil {
			v.Data = []byte{}
		}
		reply.Messages = append(reply.Messages, v)
	}
	return reply, nil
}

// BusPublish publishes a message on a session topic through the service.
func (c *Client) BusPublish(ctx context.Context, req BusRequest) (BusReply, error) {
	var r BusReply
	return r, c.Request(ctx, "bus", "publish", req, &r)
}

// BusReplay returns a topic's retained history.
func (c *Client) BusReplay(ctx context.Context, req BusRequest) (BusReply, error) {
	var r BusReply
	return r, c.Request(ctx, "bus", "replay", req, &r)
}

// BusSubscribe subscribes directly to a session topic's plain NATS subject.
func (c *Client) BusSubscribe(session, topic string, fn func(*nats.Msg)) (*nats.Subscription, error) {
	if !topicRe.MatchString(topic) {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "bad topic")
	}
	return c.nc.Subscribe(streams.BusSubject(c.Tenant, session, topic), fn)
}
