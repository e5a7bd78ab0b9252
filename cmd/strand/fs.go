package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strconv"

	"github.com/strand-dev/strand/client"
)

// parseMode reads --mode: "" is none (0).
func parseMode(s string) (uint32, error) {
	if s == "" {
		return 0, nil
	}
	return octalMode("--mode", s)
}

// octalMode reads permission bits in octal, 0 to 7777.
func octalMode(what, s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o7777 {
		return 0, usagef("%s %q is not an octal mode from 0 to 7777 (like 644)", what, s)
	}
	return uint32(v), nil
}

func (m *Main) printChange(g *globals, r client.ChangeReply) error {
	if g.json {
		return m.printJSON(r)
	}
	rows := [][]string{{"session", r.Session}, {"position", strconv.FormatUint(r.Position, 10)}, {"root", r.Root}}
	if r.Path != "" {
		rows = append(rows, []string{"path", r.Path}, []string{"hash", r.Hash}, []string{"size", strconv.FormatInt(r.Size, 10)})
	}
	m.table([]string{"FIELD", "VALUE"}, rows)
	return nil
}

func (m *Main) fsLs(ctx context.Context, args []string) error {
	var at, after string
	var limit int
	var xattrs bool
	g, pos, err := m.parseArgs("fs ls", args, func(fs *flag.FlagSet) {
		fs.StringVar(&at, "at", "", "a position or checkpoint name")
		fs.StringVar(&after, "after", "", "start after this path (the cursor of the previous page)")
		fs.IntVar(&limit, "limit", 0, "page size")
		fs.BoolVar(&xattrs, "xattrs", false, "include each entry's extended attributes")
	})
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usagef("usage: strand fs ls SESSION [PREFIX] [--at AT]")
	}
	id, a := splitAt(pos[0])
	if at != "" {
		a = client.At(at)
	}
	req := client.ManifestRequest{Session: id, At: a, After: after, Limit: limit, Xattrs: xattrs}
	if len(pos) == 2 {
		req.Prefix = pos[1]
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Manifest(ctx, req)
	return m.show(g, r, err, func() {
		rows := make([][]string, 0, len(r.Entries))
		for _, e := range r.Entries {
			name := e.Path
			if e.Kind == "dir" {
				name += "/"
			}
			if e.Target != "" {
				name += " -> " + e.Target
			}
			for _, k := range sortedKeys(e.Xattrs) {
				name += fmt.Sprintf(" [%s=%q]", k, e.Xattrs[k])
			}
			size := ""
			if e.Kind == "file" {
				size = strconv.FormatInt(e.Size, 10)
			}
			short := e.Hash
			if len(short) > 12 {
				short = short[:12]
			}
			rows = append(rows, []string{fmt.Sprintf("%04o", e.Mode), e.Kind, size, short, name})
		}
		m.table([]string{"MODE", "KIND", "SIZE", "HASH", "PATH"}, rows)
		if r.NextCursor != "" {
			fmt.Fprintf(m.Stdout, "next page: --after %s\n", r.NextCursor)
		}
	})
}

func (m *Main) fsCat(ctx context.Context, args []string) error {
	var at string
	g, pos, err := m.parseArgs("fs cat", args, func(fs *flag.FlagSet) {
		fs.StringVar(&at, "at", "", "a position or checkpoint name")
	})
	if err != nil {
		return err
	}
	if err := need(pos, 2, "fs cat SESSION PATH [--at AT]"); err != nil {
		return err
	}
	id, a := splitAt(pos[0])
	if at != "" {
		a = client.At(at)
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	data, r, err := g.client.ReadAll(ctx, id, pos[1], a)
	if err != nil {
		return err
	}
	if g.json {
		return m.printJSON(r)
	}
	_, err = m.Stdout.Write(data)
	return err
}

func (m *Main) fsWrite(ctx context.Context, args []string) error {
	var from, mode, expect string
	var mf mutationFlags
	g, pos, err := m.parseArgs("fs write", args, func(fs *flag.FlagSet) {
		fs.StringVar(&from, "from", "", "read the content from this file (default: standard input)")
		fs.StringVar(&mode, "mode", "", "permission bits in octal (default 644, or the file's current mode)")
		fs.StringVar(&expect, "expect-hash", "", "refuse unless the path holds this content hash (or \"absent\")")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	if err := need(pos, 2, "fs write SESSION PATH [--from FILE]"); err != nil {
		return err
	}
	md, err := parseMode(mode)
	if err != nil {
		return err
	}
	// The content is streamed: a large file is uploaded a chunk at a
	// time as it is read, never held whole.
	in, closeIn, err := openInput(m.Stdin, from)
	if err != nil {
		return fmt.Errorf("read content: %w", err)
	}
	defer closeIn()
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.WriteFrom(ctx, client.WriteRequest{Mutation: mf.mutation(), Session: pos[0], Path: pos[1], Mode: md, ExpectedHash: expect}, in)
	if err != nil {
		return err
	}
	return m.printChange(g, r)
}

func (m *Main) fsMkdir(ctx context.Context, args []string) error {
	var mode string
	var mf mutationFlags
	g, pos, err := m.parseArgs("fs mkdir", args, func(fs *flag.FlagSet) {
		fs.StringVar(&mode, "mode", "", "permission bits in octal (default 755)")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	if err := need(pos, 2, "fs mkdir SESSION PATH"); err != nil {
		return err
	}
	md, err := parseMode(mode)
	if err != nil {
		return err
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Mkdir(ctx, client.MkdirRequest{Mutation: mf.mutation(), Session: pos[0], Path: pos[1], Mode: md})
	if err != nil {
		return err
	}
	return m.printChange(g, r)
}

func (m *Main) fsRm(ctx context.Context, args []string) error {
	var recursive bool
	var expect string
	var mf mutationFlags
	g, pos, err := m.dialArgs("fs rm", args, 2, "fs rm [-r] SESSION PATH", func(fs *flag.FlagSet) {
		fs.BoolVar(&recursive, "r", false, "remove a directory and everything below it")
		fs.StringVar(&expect, "expect-hash", "", "refuse unless the path holds this hash")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Remove(ctx, client.RemoveRequest{Mutation: mf.mutation(), Session: pos[0], Path: pos[1], Recursive: recursive, ExpectedHash: expect})
	if err != nil {
		return err
	}
	return m.printChange(g, r)
}

func (m *Main) fsMv(ctx context.Context, args []string) error {
	var mf mutationFlags
	g, pos, err := m.dialArgs("fs mv", args, 3, "fs mv SESSION SRC DST", mf.declare)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Rename(ctx, client.RenameRequest{Mutation: mf.mutation(), Session: pos[0], From: pos[1], To: pos[2]})
	if err != nil {
		return err
	}
	return m.printChange(g, r)
}

func (m *Main) fsLn(ctx context.Context, args []string) error {
	var mf mutationFlags
	g, pos, err := m.dialArgs("fs ln", args, 3, "fs ln SESSION TARGET LINK", mf.declare)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Symlink(ctx, client.SymlinkRequest{Mutation: mf.mutation(), Session: pos[0], Target: pos[1], Path: pos[2]})
	if err != nil {
		return err
	}
	return m.printChange(g, r)
}

func (m *Main) fsChmod(ctx context.Context, args []string) error {
	var mf mutationFlags
	g, pos, err := m.dialArgs("fs chmod", args, 3, "fs chmod SESSION MODE PATH", mf.declare)
	if err != nil {
		return err
	}
	defer g.close()
	mode, err := octalMode("fs chmod: mode", pos[1])
	if err != nil {
		return err
	}
	r, err := g.client.Chmod(ctx, client.ChmodRequest{Mutation: mf.mutation(), Session: pos[0], Path: pos[2], Mode: &mode})
	if err != nil {
		return err
	}
	return m.printChange(g, r)
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
