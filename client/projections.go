package client

import (
	"context"
	"time"
)

// ProjectionStatus is a read model's position and lag.
type ProjectionStatus struct {
	Name       string `json:"name"`
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	Generation uint64 `json:"generation"`
	// State is running, resetting or rebuilding.
	State string `json:"state"`
	// Position: every event at or below it is folded.
	Position  uint64 `json:"position"`
	Delivered uint64 `json:"delivered"`
	// Lag counts the events still to fold (pending + ack_pending).
	Lag        uint64 `json:"lag"`
	Pending    uint64 `json:"pending"`
	AckPending int    `json:"ack_pending"`
	Waiting    int    `json:"waiting"`
	// Holder is the instance that folds it (host:pid:suffix) and Renewed
	// when it last said so (every second while it folds).
	Holder     string    `json:"holder,omitempty"`
	Renewed    time.Time `json:"renewed,omitzero"`
	StreamLast uint64    `json:"stream_last"`
	Target     uint64    `json:"rebuild_target,omitempty"`
	Since      time.Time `json:"since,omitzero"`
	Error      string    `json:"error,omitempty"`
}

// ProjectionsReply answers projections.status.
type ProjectionsReply struct {
	Projections []ProjectionStatus `json:"projections"`
}

// Projections reports every projection's position and lag.
func (c *Client) Projections(ctx context.Context) (ProjectionsReply, error) {
	var r ProjectionsReply
	return r, c.Call(ctx, ProjectionsStatus, struct{}{}, &r)
}
