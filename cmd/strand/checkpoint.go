package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/strand-dev/strand/client"
)

func (m *Main) printf(format string, args ...any) { fmt.Fprintf(m.Stdout, format, args...) }

func (m *Main) checkpointCreate(ctx context.Context, args []string) error {
	var note, at string
	var mf mutationFlags
	g, pos, err := m.dialArgs("checkpoint create", args, 2, "checkpoint create SESSION NAME [--note TEXT]", func(fs *flag.FlagSet) {
		fs.StringVar(&note, "note", "", "a note")
		fs.StringVar(&at, "at", "", "name this position instead of the head")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.CreateCheckpoint(ctx, client.CheckpointRequest{Mutation: mf.mutation(), Session: pos[0], Name: pos[1], Note: note, At: client.At(at)})
	return m.show(g, r, err, func() {
		m.printf("checkpoint %s -> position %d (event at %d)\n", r.Checkpoint.Name, r.Checkpoint.Position, r.Position)
	})
}

func (m *Main) checkpointList(ctx context.Context, args []string) error {
	var at string
	g, pos, err := m.dialArgs("checkpoint list", args, 1, "checkpoint list SESSION", func(fs *flag.FlagSet) {
		fs.StringVar(&at, "at", "", "as of this position")
	})
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.ListCheckpoints(ctx, client.CheckpointListRequest{Session: pos[0], At: client.At(at)})
	return m.show(g, r, err, func() {
		rows := make([][]string, 0, len(r.Checkpoints))
		for _, cp := range r.Checkpoints {
			rows = append(rows, []string{cp.Name, strconv.FormatUint(cp.Position, 10), cp.Actor, cp.CreatedAt.Format(time.RFC3339), cp.Note})
		}
		m.table([]string{"NAME", "POSITION", "ACTOR", "CREATED", "NOTE"}, rows)
	})
}

func (m *Main) checkpointRm(ctx context.Context, args []string) error {
	var mf mutationFlags
	g, pos, err := m.dialArgs("checkpoint rm", args, 2, "checkpoint rm SESSION NAME", mf.declare)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.DeleteCheckpoint(ctx, client.CheckpointRequest{Mutation: mf.mutation(), Session: pos[0], Name: pos[1]})
	return m.show(g, r, err, func() { m.printf("checkpoint %s removed (event at %d)\n", pos[1], r.Position) })
}
