package main

import (
	"context"
	"flag"
	"strconv"
	"strings"
	"time"

	"github.com/strand-dev/strand/handlers"
)

func (m *Main) cmdEvents(ctx context.Context, _ *globals, args []string) error {
	var at string
	var from uint64
	var limit int
	g, pos, err := m.parseArgs("events", args, func(fs *flag.FlagSet) {
		fs.StringVar(&at, "at", "", "list up to this position or checkpoint")
		fs.Uint64Var(&from, "from", 0, "first position to list")
		fs.IntVar(&limit, "limit", 0, "events per page (default 100)")
	})
	if err != nil {
		return err
	}
	if err := need(pos, 1, "events SESSION [--at AT] [--from POS]"); err != nil {
		return err
	}
	id, a := splitAt(pos[0])
	if at != "" {
		a = handlers.At(at)
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Events(ctx, handlers.EventsRequest{Session: id, From: from, At: a, Limit: limit})
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

func eventSummary(e handlers.EventView) string {
	var parts []string
	for _, op := range e.Ops {
		s := op.Op + " " + op.Path
		if op.To != "" {
			s += " -> " + op.To
		}
		if op.Target != "" {
			s += " -> " + op.Target
		}
		parts = append(parts, s)
	}
	if e.Origin != nil && e.Origin.Parent != "" {
		parts = append(parts, "fork of "+e.Origin.Parent+"@"+strconv.FormatUint(e.Origin.Position, 10))
	}
	if len(e.Tags) > 0 {
		parts = append(parts, "tags "+formatTags(e.Tags))
	}
	if len(e.Untag) > 0 {
		parts = append(parts, "untag "+strings.Join(e.Untag, ","))
	}
	if e.Checkpoint != nil {
		parts = append(parts, "checkpoint "+e.Checkpoint.Name+" -> "+strconv.FormatUint(e.Checkpoint.Position, 10))
	}
	if e.RestoredTo != 0 {
		parts = append(parts, "restored to "+strconv.FormatUint(e.RestoredTo, 10))
	}
	s := strings.Join(parts, "; ")
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}
