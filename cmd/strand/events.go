package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"strconv"
	"strings"
	"time"

	"github.com/strand-dev/strand/client"
)

func (m *Main) cmdEvents(ctx context.Context, args []string) error {
	var at, types, actor, path, since, until string
	var from uint64
	var limit int
	var watch bool
	g, pos, err := m.parseArgs("events", args, func(fs *flag.FlagSet) {
		fs.StringVar(&at, "at", "", "list up to this position or checkpoint")
		fs.Uint64Var(&from, "from", 0, "first position to list")
		fs.IntVar(&limit, "limit", 0, "events per page (default 100)")
		fs.StringVar(&types, "type", "", "only these event types (comma-separated)")
		fs.StringVar(&actor, "actor-filter", "", "only events by this actor")
		fs.StringVar(&path, "path", "", "only events that touch this path")
		fs.StringVar(&since, "since", "", "only events at or after this time (RFC 3339)")
		fs.StringVar(&until, "until", "", "only events before this time (RFC 3339)")
		fs.BoolVar(&watch, "watch", false, "keep printing new events as they are stored")
	})
	if err != nil {
		return err
	}
	if err := need(pos, 1, "events SESSION [--at AT] [--from POS] [--watch]"); err != nil {
		return err
	}
	id, a := splitAt(pos[0])
	if at != "" {
		a = client.At(at)
	}
	req := client.EventsRequest{Session: id, From: from, At: a, Limit: limit, Actor: actor, Path: path}
	if types != "" {
		req.Types = strings.Split(types, ",")
	}
	for _, t := range []struct {
		s   string
		dst **time.Time
	}{{since, &req.Since}, {until, &req.Until}} {
		if t.s == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, t.s)
		if err != nil {
			return usagef("times must be RFC 3339, like 2026-01-02T15:04:05Z")
		}
		*t.dst = &v
	}
	if watch && (a != "" || len(req.Types) > 0 || actor != "" || path != "" || since != "" || until != "") {
		return usagef("--watch takes no filters or --at")
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	if watch {
		header := false
		err := g.client.Watch(ctx, id, from, func(e client.EventView) error {
			if g.json {
				return json.NewEncoder(m.Stdout).Encode(e)
			}
			if !header {
				m.printf("%-10s %-20s %-18s %-12s %s\n", "POSITION", "TIME", "TYPE", "ACTOR", "DETAIL")
				header = true
			}
			m.printf("%-10d %-20s %-18s %-12s %s\n", e.Position, e.Time.Format(time.RFC3339), e.Type, e.Actor, eventSummary(e))
			return nil
		})
		if errors.Is(err, context.Canceled) {
			return nil // interrupted: the normal way to stop watching
		}
		return err
	}
	r, err := g.client.Events(ctx, req)
	if err != nil {
		return err
	}
	if g.json {
		return m.printJSON(r)
	}
	rows := make([][]string, 0, len(r.Events))
	for _, e := range r.Events {
		rows = append(rows, []string{strconv.FormatUint(e.Position, 10), e.Time.Format(time.RFC3339), e.Type, e.Actor, eventSummary(e)})
	}
	m.table([]string{"POSITION", "TIME", "TYPE", "ACTOR", "DETAIL"}, rows)
	if r.NextFrom != 0 {
		m.printf("next page: --from %d\n", r.NextFrom)
	}
	return nil
}

// eventSummary is the DETAIL column: the event's one-line summary
// (domain.Event.Summary, carried by the event view), cut to 100 runes.
func eventSummary(e client.EventView) string {
	if r := []rune(e.Summary); len(r) > 100 {
		return string(r[:97]) + "..."
	}
	return e.Summary
}
