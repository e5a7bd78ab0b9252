package handlers

import (
	"context"
	"encoding/json"
	"time"

	"github.com/strand-dev/strand/domain"
)

// HealthRequest is the body of health.report and health.get.
type HealthRequest struct {
	Mutation
	Session string          `json:"session"`
	Passing *bool           `json:"passing,omitempty"`
	Passed  int             `json:"passed,omitempty"`
	Failed  int             `json:"failed,omitempty"`
	Skipped int             `json:"skipped,omitempty"`
	Summary string          `json:"summary,omitempty"`
	Details json.RawMessage `json:"details,omitempty"`
	At      At              `json:"at,omitempty"`
}

// HealthView is a test-run result.
type HealthView struct {
	Passing    bool            `json:"passing"`
	Passed     int             `json:"passed"`
	Failed     int             `json:"failed"`
	Skipped    int             `json:"skipped"`
	Summary    string          `json:"summary,omitempty"`
	Details    json.RawMessage `json:"details,omitempty"`
	Actor      string          `json:"actor"`
	ReportedAt time.Time       `json:"reported_at"`
	Position   uint64          `json:"position"`
}

// HealthReply answers health.report and health.get.
type HealthReply struct {
	Health   *HealthView `json:"health"`
	Position uint64      `json:"position"`
	Replayed bool        `json:"replayed,omitempty"`
}

func healthView(h *domain.HealthReport) *HealthView {
	if h == nil {
		return nil
	}
	return &HealthView{
		Passing: h.Passing, Passed: h.Passed, Failed: h.Failed, Skipped: h.Skipped, Summary: h.Summary,
		Details: json.RawMessage(h.Details), Actor: h.Actor, ReportedAt: h.At, Position: h.Position,
	}
}

func (s *Service) healthReport(c *call) (any, error) {
	var req HealthRequest
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
	return HealthReply{Health: healthView(res.Session.Health), Position: res.Position, Replayed: res.Replayed}, nil
}

func (s *Service) healthGet(c *call) (any, error) {
	var req HealthRequest
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
	return HealthReply{Health: healthView(sess.Health), Position: sess.Position}, nil
}

// ReportHealth records a test-run result.
func (c *Client) ReportHealth(ctx context.Context, req HealthRequest) (HealthReply, error) {
	var r HealthReply
	return r, c.Request(ctx, "health", "report", req, &r)
}

// Health returns the latest test-run result.
func (c *Client) Health(ctx context.Context, req HealthRequest) (HealthReply, error) {
	var r HealthReply
	return r, c.Request(ctx, "health", "get", req, &r)
}
