package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func (m *Main) printSource(g *globals, r client.SourceReply) error {
	if g.json {
		return m.printJSON(r)
	}
	s := r.Source
	rows := [][]string{{"name", s.Name}, {"latest", strconv.FormatUint(s.Latest, 10)}, {"created", s.CreatedAt.Format(time.RFC3339)}}
	if s.Deleted {
		rows = append(rows, []string{"deleted", "yes"})
	}
	if s.Description != "" {
		rows = append(rows, []string{"description", s.Description})
	}
	m.table([]string{"FIELD", "VALUE"}, rows)
	if len(s.Revisions) > 0 {
		var revs [][]string
		for _, v := range s.Revisions {
			revs = append(revs, []string{strconv.FormatUint(v.Number, 10), v.Root[:12], strconv.FormatInt(v.Files, 10), strconv.FormatInt(v.Bytes, 10), originText(v.Origin)})
		}
		m.table([]string{"REVISION", "ROOT", "FILES", "BYTES", "ORIGIN"}, revs)
	}
	return nil
}

func originText(o domain.RevisionOrigin) string {
	switch o.Kind {
	case domain.OriginGit:
		return "git " + o.Repo + " " + o.Ref + " " + o.Commit
	case domain.OriginDir:
		return "dir " + o.Path
	case domain.OriginSession:
		return "session " + o.Session + "@" + strconv.FormatUint(o.Position, 10)
	case domain.OriginTar:
		return "tar " + o.Archive[:min(12, len(o.Archive))]
	}
	return o.Kind
}

func (m *Main) sourceCreate(ctx context.Context, args []string) error {
	var req client.SourceCreateRequest
	var mf mutationFlags
	g, pos, err := m.parseArgs("source create", args, func(fs *flag.FlagSet) {
		fs.StringVar(&req.Description, "description", "", "what the source holds")
		fs.BoolVar(&req.Blank, "blank", false, "add an empty revision 1")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	if err := need(pos, 1, "source create NAME"); err != nil {
		return err
	}
	req.Name, req.Mutation = pos[0], mf.mutation()
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.CreateSource(ctx, req)
	if err != nil {
		return err
	}
	return m.printSource(g, r)
}

func (m *Main) sourceList(ctx context.Context, args []string) error {
	g, _, err := m.dialArgs("source list", args, 0, "source list", nil)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.ListSources(ctx)
	return m.show(g, r, err, func() {
		var rows [][]string
		for _, s := range r.Sources {
			state := "active"
			if s.Deleted {
				state = "deleted"
			}
			rows = append(rows, []string{s.Name, strconv.FormatUint(s.Latest, 10), state, s.UpdatedAt.Format(time.RFC3339)})
		}
		m.table([]string{"NAME", "LATEST", "STATE", "UPDATED"}, rows)
	})
}

func (m *Main) sourceGet(ctx context.Context, args []string) error {
	g, pos, err := m.dialArgs("source get", args, 1, "source get NAME", nil)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.GetSource(ctx, pos[0])
	if err != nil {
		return err
	}
	return m.printSource(g, r)
}

func (m *Main) sourceRm(ctx context.Context, args []string) error {
	var mf mutationFlags
	g, pos, err := m.dialArgs("source rm", args, 1, "source rm NAME", mf.declare)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.DeleteSource(ctx, client.SourceRequest{Mutation: mf.mutation(), Name: pos[0]})
	if err != nil {
		return err
	}
	return m.printSource(g, r)
}

func (m *Main) sourceImport(ctx context.Context, args []string) error {
	var tarFile, gitPath, ref, dir string
	var wait bool
	var mf mutationFlags
	g, pos, err := m.parseArgs("source import", args, func(fs *flag.FlagSet) {
		fs.StringVar(&tarFile, "tar", "", "a tar or tar.gz archive to upload (- for standard input)")
		fs.StringVar(&gitPath, "git", "", "a git repository or bundle file")
		fs.StringVar(&ref, "ref", "", "with --git: a branch, tag or commit (default HEAD)")
		fs.StringVar(&dir, "dir", "", "a directory of the server host (the server must allow it)")
		fs.BoolVar(&wait, "wait", false, "wait until the job ends")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	if err := need(pos, 1, "source import NAME (--tar FILE | --git PATH [--ref REF] | --dir PATH)"); err != nil {
		return err
	}
	n := 0
	for _, v := range []string{tarFile, gitPath, dir} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return usagef("give exactly one of --tar, --git and --dir")
	}
	if ref != "" && gitPath == "" {
		return usagef("--ref goes with --git")
	}
	req := client.SourceImportRequest{Mutation: mf.mutation(), Name: pos[0]}
	var upload io.Reader
	switch {
	case tarFile != "":
		in, closeIn, err := openInput(m.Stdin, tarFile)
		if err != nil {
			return err
		}
		defer closeIn()
		upload = in
		req.Tar = &client.TarSpec{}
	case gitPath != "":
		req.Git = &client.GitSpec{Ref: ref}
		bundle, err := gitBundle(ctx, gitPath)
		if err != nil {
			return err
		}
		upload = bytes.NewReader(bundle)
	default:
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		req.Dir = &client.DirSpec{Path: abs}
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	if upload != nil {
		chunks, err := g.client.UploadArchiveFrom(ctx, upload)
		if err != nil {
			return err
		}
		if req.Tar != nil {
			req.Tar.Chunks = chunks
		} else {
			req.Git.Chunks = chunks
		}
	}
	r, err := g.client.ImportSource(ctx, req)
	if err != nil {
		return err
	}
	return m.showJob(ctx, g, r.Job, wait)
}

// gitBundle returns the bytes of a bundle of a repository: the file itself
// when path is a bundle, or one made with `git bundle create --all` (the
// server may be elsewhere, so the repository travels as a bundle).
func gitBundle(ctx context.Context, path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().IsRegular() {
		return os.ReadFile(path)
	}
	tmp, err := os.MkdirTemp("", "strand-bundle-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	file := filepath.Join(tmp, "repo.bundle")
	out, err := exec.CommandContext(ctx, "git", "-C", path, "bundle", "create", file, "--all").CombinedOutput()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, usagef("--git with a repository needs the git command here (or give a bundle file)")
		}
		return nil, &client.Error{Code: domain.CodeInvalidArgument, Message: "git bundle create: " + string(out)}
	}
	return os.ReadFile(file)
}

func (m *Main) showJob(ctx context.Context, g *globals, job domain.Job, wait bool) error {
	if wait && !job.Done() {
		var err error
		if job, err = g.client.WaitJob(ctx, job.ID, 200*time.Millisecond); err != nil {
			return err
		}
	}
	if g.json {
		if err := m.printJSON(client.JobReply{Job: job}); err != nil {
			return err
		}
	} else {
		rows := [][]string{{"job", job.ID}, {"source", job.Source}, {"kind", job.Kind}, {"state", job.State},
			{"files", strconv.FormatInt(job.Files, 10)}, {"bytes", strconv.FormatInt(job.Bytes, 10)}}
		if job.Revision != 0 {
			rows = append(rows, []string{"revision", strconv.FormatUint(job.Revision, 10)}, []string{"root", job.Root})
		}
		if job.ErrorCode != "" {
			rows = append(rows, []string{"error", job.ErrorCode + ": " + job.ErrorMessage})
		}
		m.table([]string{"FIELD", "VALUE"}, rows)
	}
	if job.State == domain.JobFailed {
		return &client.Error{Code: domain.Code(job.ErrorCode), Message: "job " + job.ID + " failed: " + job.ErrorMessage}
	}
	return nil
}

func (m *Main) sourceJob(ctx context.Context, args []string) error {
	var wait bool
	g, pos, err := m.dialArgs("source job", args, 1, "source job JOB", func(fs *flag.FlagSet) {
		fs.BoolVar(&wait, "wait", false, "wait until the job ends")
	})
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Job(ctx, pos[0])
	if err != nil {
		return err
	}
	return m.showJob(ctx, g, r.Job, wait)
}

func (m *Main) sourcePromote(ctx context.Context, args []string) error {
	var at string
	var mf mutationFlags
	g, pos, err := m.parseArgs("source promote", args, func(fs *flag.FlagSet) {
		fs.StringVar(&at, "at", "", "a position, checkpoint or commit (default: the head)")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	if err := need(pos, 2, "source promote NAME SESSION[@AT]"); err != nil {
		return err
	}
	id, a := splitAt(pos[1])
	if at != "" {
		a = client.At(at)
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Promote(ctx, client.PromoteRequest{Mutation: mf.mutation(), Name: pos[0], Session: id, At: a})
	if err != nil {
		return err
	}
	return m.printSource(g, r)
}
