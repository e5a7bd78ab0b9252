package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// runDiff is row 5: the difference between a tree of 1,000 (and of
// 100,000) files and a fork of it after 10 single-file changes. Strand's
// figure is the diff endpoint (request, both sides resolved from the
// service's cache, domain.Diff, which walks both Merkle trees and skips
// every shared subtree, reply); the note gives domain.Diff alone. The raw
// figure reads the 10 change events from the fork's
// subject through an ordered consumer: the least JetStream work that tells
// what changed.
func runDiff(ctx context.Context, r *Runner) ([]Result, error) {
	e := r.Fast
	pool, err := r.contentPool(ctx, e)
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, n := range r.Sizes.DiffFiles {
		base, err := r.session(ctx, e, historySpec{Files: n, Events: minEvents(n)})
		if err != nil {
			return out, err
		}
		if err := r.verify(ctx, e, base); err != nil {
			return out, err
		}
		fork, err := e.Store.Fork(ctx, r.Tenant, base.Head.ID, 0, r.meta(), domain.ForkSession{ID: r.ids.next(), Owner: "bench"})
		if err != nil {
			return out, err
		}
		changes := r.Sizes.DiffChanges
		head := fork
		for i := 0; i < changes; i++ {
			f := (i*7919 + 13) % n
			k := (i*31 + 7) % poolSize
			if cur := base.Head.Tree.Lookup(filePath(f)); cur != nil && cur.Content == pool.hashes[k] {
				k = (k + 1) % poolSize
			}
			h, size := pool.hashes[k], pool.sizes[k]
			head, err = e.Store.Change(ctx, r.Tenant, fork.Session.ID, r.meta(), func(*domain.Session) (domain.Command, error) {
				return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: filePath(f), Content: h, Size: size}}}, nil
			})
			if err != nil {
				return out, err
			}
		}
		a, b := base.Head.Tree, head.Session.Tree
		if got := domain.Diff(a, b).Len(); got != changes {
			return out, fmt.Errorf("diff of %d changes found %d", changes, got)
		}
		subject := names.EventSubject(r.Tenant, fork.Session.ID)
		req := client.DiffRequest{
			From: &client.DiffSide{Session: base.Head.ID, At: client.AtPosition(base.Head.Position)},
			To:   client.DiffSide{Session: fork.Session.ID},
		}
		endpoint := func() error {
			d, err := e.Client.Diff(ctx, req)
			if err == nil && d.Counts.Modified != changes {
				err = fmt.Errorf("diff endpoint found %+v, want %d modified", d.Counts, changes)
			}
			return err
		}
		if err := endpoint(); err != nil { // warm the service's cache
			return out, err
		}
		var sd, dd, rd []time.Duration
		for k := 0; k < r.Sizes.DiffReps; k++ {
			d, err := clock(endpoint)
			if err != nil {
				return out, err
			}
			sd = append(sd, d)
			d, _ = clock(func() error { domain.Diff(a, b); return nil })
			dd = append(dd, d)
			d, err = clock(func() error {
				got, err := readSubject(ctx, e.JS, names.EventStream, subject, fork.Position+1, head.Position)
				if err == nil && got != changes {
					err = fmt.Errorf("read %d change events, want %d", got, changes)
				}
				return err
			})
			if err != nil {
				return out, err
			}
			rd = append(rd, d)
		}
		sf, df, rf := latencyFigure(sd), latencyFigure(dd), latencyFigure(rd)
		out = append(out, Result{
			Case: fmt.Sprintf("%d changes in %s files", changes, count(n)), Server: e.Name,
			Strand: sf, Raw: &rf, Ratio: ratio(sf.Value, rf.Value),
			RawWhat: "ordered consumer reading the change events",
			Note:    fmt.Sprintf("diff endpoint, sessions cached by the service; domain.Diff alone %.3f ms", df.Value),
		})
		r.progressf("  %d files: diff endpoint %.3f ms (domain.Diff %.3f ms), raw %.3f ms", n, sf.Value, df.Value, rf.Value)
	}
	return out, nil
}
