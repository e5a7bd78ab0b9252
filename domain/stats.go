package domain

import "time"

// StatsBucket is one step of a session's timeline: the events stored in
// [Start, Start+width), by type. The stats projection keeps them and
// session.stats answers them as they are.
type StatsBucket struct {
	Start  time.Time      `json:"start"`
	Events int            `json:"events"`
	ByType map[string]int `json:"by_type"`
}

// ApprovalTiming is how long one approval request waited for its decision.
type ApprovalTiming struct {
	ID          string    `json:"id"`
	Reason      string    `json:"reason"`
	Requester   string    `json:"requester"`
	RequestedAt time.Time `json:"requested_at"`
	// Decision is granted or denied ("" while pending); DecidedAt is the
	// first grant or the denial, Seconds the wait until then.
	Decision  string    `json:"decision,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Seconds   float64   `json:"seconds,omitempty"`
}
