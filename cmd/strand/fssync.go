package main

import (
	"context"
	"flag"
	"strconv"
)

func (m *Main) fsSync(ctx context.Context, args []string) error {
	var tarFile string
	var del bool
	var mf mutationFlags
	g, pos, err := m.parseArgs("fs sync", args, func(fs *flag.FlagSet) {
		fs.StringVar(&tarFile, "tar", "", "the archive (- for standard input)")
		fs.BoolVar(&del, "delete", false, "remove the paths the archive does not hold")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	if err := need(pos, 1, "fs sync SESSION --tar FILE [--delete]"); err != nil {
		return err
	}
	if tarFile == "" {
		return usagef("fs sync needs --tar FILE")
	}
	in, closeIn, err := openInput(m.Stdin, tarFile)
	if err != nil {
		return err
	}
	defer closeIn()
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.SyncFrom(ctx, pos[0], in, del, mf.mutation())
	return m.show(g, r, err, func() {
		m.table([]string{"FIELD", "VALUE"}, [][]string{
			{"session", r.Session}, {"changed", strconv.FormatBool(r.Changed)}, {"written", strconv.Itoa(r.Written)},
			{"removed", strconv.Itoa(r.Removed)}, {"position", strconv.FormatUint(r.Position, 10)}, {"root", r.Root},
		})
	})
}
