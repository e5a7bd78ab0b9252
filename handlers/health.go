package handlers

import (
	"encoding/json"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func healthView(h *domain.HealthReport) *client.HealthView {
	if h == nil {
		return nil
	}
	return &client.HealthView{
		Passing: h.Passing, Passed: h.Passed, Failed: h.Failed, Skipped: h.Skipped, Summary: h.Summary,
		Details: json.RawMessage(h.Details), Actor: h.Actor, ReportedAt: h.At, Position: h.Position,
	}
}

func (s *Service) healthReport(c *call) (any, error) {
	var req client.HealthRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.Passing == nil {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "passing is required (true or false)")
	}
	if req.At != "" {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "at cannot be given to a change")
	}
	res, err := c.change(id, req.Mutation, func(*domain.Session) (domain.Command, error) {
		return domain.ReportHealth{Data: domain.HealthData{
			Passing: *req.Passing, Passed: req.Passed, Failed: req.Failed, Skipped: req.Skipped,
			Summary: req.Summary, Details: req.Details,
		}}, nil
	})
	if err != nil {
		return nil, err
	}
	return client.HealthReply{Health: healthView(res.Session.Health), Position: res.Position, Replayed: res.Replayed}, nil
}

func (s *Service) healthGet(c *call) (any, error) {
	var req client.HealthRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.Passing != nil || req.Summary != "" || req.Details != nil || req.Passed+req.Failed+req.Skipped != 0 {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "health.get takes session and at")
	}
	sess, err := c.resolveAt(id, req.At)
	if err != nil {
		return nil, err
	}
	if sess.Health == nil {
		return nil, domain.Errorf(domain.CodeNotFound, "no health report for session %s", id)
	}
	return client.HealthReply{Health: healthView(sess.Health), Position: sess.Position}, nil
}
