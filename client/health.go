package client

import (
	"context"
	"encoding/json"
	"time"
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

// ReportHealth records a test-run result.
func (c *Client) ReportHealth(ctx context.Context, req HealthRequest) (HealthReply, error) {
	var r HealthReply
	return r, c.Call(ctx, HealthReport, req, &r)
}

// Health returns the latest test-run result.
func (c *Client) Health(ctx context.Context, req HealthRequest) (HealthReply, error) {
	var r HealthReply
	return r, c.Call(ctx, HealthGet, req, &r)
}
