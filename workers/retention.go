package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/strand-dev/strand/domain"
)

// SessionInfo is what retention needs to know of a session.
type SessionInfo struct {
	ID        string
	Status    string
	UpdatedAt time.Time
}

// SessionAPI is the part of the service retention uses (cmd wires the Go
// client to it, so retention goes through the same checks and policies as
// anyone: a delete that needs an approval is refused to it too).
type SessionAPI interface {
	// Oldest returns a page of a tenant's sessions with a status, least
	// recently updated first, and the cursor of the next page.
	Oldest(ctx context.Context, tenant, status, cursor string, limit int) ([]SessionInfo, string, error)
	Archive(ctx context.Context, tenant, id string) error
	Delete(ctx context.Context, tenant, id string) error
}

// RetentionPolicy says when sessions go.
type RetentionPolicy struct {
	// Idle archives active sessions not updated for this long (0: never).
	Idle time.Duration `json:"idle"`
	// DeleteAfter deletes archived sessions not updated (archiving is an
	// update) for this long (0: never).
	DeleteAfter time.Duration `json:"delete_after"`
	DryRun      bool          `json:"dry_run"`
}

// RetentionReport says what a retention pass did (or, dry, would do).
type RetentionReport struct {
	Tenant   string   `json:"tenant"`
	DryRun   bool     `json:"dry_run"`
	Archived []string `json:"archived"`
	Deleted  []string `json:"deleted"`
	// Skipped are sessions the service refused to change, with why.
	Skipped map[string]string `json:"skipped,omitempty"`
}

// Retention archives idle sessions and deletes long-archived ones.
type Retention struct {
	API    SessionAPI
	Policy RetentionPolicy
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Run does one pass over a tenant.
func (r *Retention) Run(ctx context.Context, tenant string, p RetentionPolicy) (RetentionReport, error) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	rep := RetentionReport{Tenant: tenant, DryRun: p.DryRun, Archived: []string{}, Deleted: []string{}}
	skip := func(id string, err error) {
		if rep.Skipped == nil {
			rep.Skipped = map[string]string{}
		}
		rep.Skipped[id] = string(domain.ErrorCode(err)) + ": " + domain.ErrorMessage(err)
	}
	pass := func(status string, older time.Duration, act func(ctx context.Context, tenant, id string) error, done *[]string) error {
		if older <= 0 {
			return nil
		}
		cutoff := now().Add(-older)
		cursor := ""
		for {
			page, next, err := r.API.Oldest(ctx, tenant, status, cursor, 200)
			if err != nil {
				return err
			}
			for _, s := range page {
				if !s.UpdatedAt.Before(cutoff) {
					return nil // the rest were updated later
				}
				if !p.DryRun {
					if err := act(ctx, tenant, s.ID); err != nil {
						if domain.ErrorCode(err) == domain.CodeInternal || domain.ErrorCode(err) == domain.CodeUnavailable {
							return fmt.Errorf("retention %s: %w", s.ID, err)
						}
						skip(s.ID, err)
						continue
					}
				}
				*done = append(*done, s.ID)
			}
			if next == "" {
				return nil
			}
			cursor = next
		}
	}
	if err := pass(string(domain.StatusActive), p.Idle, r.API.Archive, &rep.Archived); err != nil {
		return rep, err
	}
	if err := pass(string(domain.StatusArchived), p.DeleteAfter, r.API.Delete, &rep.Deleted); err != nil {
		return rep, err
	}
	return rep, nil
}

// RetentionHandler runs a pass for the item's tenant. The item's body may
// carry a policy (JSON RetentionPolicy); otherwise the Retention's own.
func (r *Retention) RetentionHandler(report func(RetentionReport)) Handler {
	return func(ctx context.Context, it *Item) error {
		p := r.Policy
		if len(it.Data) > 0 {
			if err := json.Unmarshal(it.Data, &p); err != nil {
				return Permanent(fmt.Errorf("retention item: %w", err))
			}
		}
		rep, err := r.Run(ctx, it.Tenant, p)
		if report != nil {
			report(rep)
		}
		return err
	}
}
