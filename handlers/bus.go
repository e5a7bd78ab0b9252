package handlers

import (
	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// Bus limits.
const (
	MaxBusMessage      = 256 * 1024
	DefaultReplayLimit = 100
	MaxReplayLimit     = 1000
)

func (c *call) busSubject(req client.BusRequest) (string, error) {
	id, err := sessionID(req.Session)
	if err != nil {
		return "", err
	}
	if !domain.ValidTopic(req.Topic) {
		return "", domain.Errorf(domain.CodeInvalidArgument, "topic must be 1 to 8 dot-separated tokens of [A-Za-z0-9_-]")
	}
	sess, err := c.svc.store.Peek(c.ctx, c.tenant, id)
	if err != nil {
		return "", err
	}
	if err := readable(sess); err != nil {
		return "", err
	}
	return names.BusSubject(c.tenant, id, req.Topic), nil
}

func (s *Service) busPublish(c *call) (any, error) {
	var req client.BusRequest
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
	hdr.Set(names.HeaderActor, meta.Actor)
	hdr.Set(names.HeaderSession, req.Session)
	if req.RequestID != "" {
		hdr.Set(names.HeaderMsgID, subject+"."+req.RequestID)
	}
	seq, err := s.store.BusPublish(c.ctx, subject, req.Data, hdr)
	if err != nil {
		return nil, err
	}
	return client.BusReply{Subject: subject, Sequence: seq}, nil
}

func (s *Service) busReplay(c *call) (any, error) {
	var req client.BusRequest
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
	reply := client.BusReply{Subject: subject, Messages: []client.BusMessageView{}}
	for _, m := range msgs {
		v := client.BusMessageView{Sequence: m.Sequence, Time: m.Time.UTC(), Data: m.Data}
		if m.Header != nil {
			v.Actor = nats.Header(m.Header).Get(names.HeaderActor)
		}
		if v.Data == nil {
			v.Data = []byte{}
		}
		reply.Messages = append(reply.Messages, v)
	}
	return reply, nil
}
