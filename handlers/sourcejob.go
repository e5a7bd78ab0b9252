package handlers

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/imports"
)

// DefaultJobTimeout is how long a job may go without a heartbeat before
// source.job reports it failed: its instance stopped. The runner beats
// every quarter of it.
const DefaultJobTimeout = 2 * time.Minute

// maxImportChunks bounds the chunks of one uploaded archive or bundle.
const maxImportChunks = 1 << 16

// importSpec is what an import job reads, checked when it is accepted.
type importSpec struct {
	origin domain.RevisionOrigin
	run    func(ctx context.Context, blobs domain.BlobStore, progress imports.Progress) (imports.Result, error)
}

func (s *Service) importSpec(c *call, req client.SourceImportRequest) (importSpec, error) {
	n := 0
	for _, set := range []bool{req.Tar != nil, req.Git != nil, req.Dir != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return importSpec{}, domain.Errorf(domain.CodeInvalidArgument, "give exactly one of tar, git and dir")
	}
	lim := s.opts.ImportLimits
	switch {
	case req.Tar != nil:
		chunks, err := c.uploaded(req.Tar.Chunks)
		if err != nil {
			return importSpec{}, err
		}
		return importSpec{
			origin: domain.RevisionOrigin{Kind: domain.OriginTar, Archive: archiveID(chunks)},
			run: func(ctx context.Context, blobs domain.BlobStore, p imports.Progress) (imports.Result, error) {
				return imports.Tar(ctx, blobs.ChunkReader(ctx, chunks), blobs, lim, p)
			},
		}, nil
	case req.Git != nil:
		g := *req.Git
		if len(g.Ref) > 1024 {
			return importSpec{}, domain.Errorf(domain.CodeInvalidArgument, "ref is longer than 1024 bytes")
		}
		origin := domain.RevisionOrigin{Kind: domain.OriginGit, Repo: g.Path, Ref: g.Ref}
		switch {
		case g.Path != "" && len(g.Chunks) > 0, g.Path == "" && len(g.Chunks) == 0:
			return importSpec{}, domain.Errorf(domain.CodeInvalidArgument, "git needs a path or the chunks of a bundle")
		case g.Path != "":
			// A path names a repository on the server host: the same
			// exposure as a directory import, so the same operator switch.
			if !s.opts.AllowDirImport {
				return importSpec{}, domain.Errorf(domain.CodeForbidden, "importing a git repository from a path of the server host is off; upload a bundle, or the operator enables host paths with strand serve --allow-dir-import")
			}
			if !filepath.IsAbs(g.Path) {
				return importSpec{}, domain.Errorf(domain.CodeInvalidArgument, "git path must be absolute")
			}
			return importSpec{origin: origin, run: func(ctx context.Context, blobs domain.BlobStore, p imports.Progress) (imports.Result, error) {
				return imports.Git(ctx, g.Path, g.Ref, blobs, lim, p)
			}}, nil
		}
		chunks, err := c.uploaded(g.Chunks)
		if err != nil {
			return importSpec{}, err
		}
		origin.Repo = "bundle:" + archiveID(chunks)
		return importSpec{origin: origin, run: func(ctx context.Context, blobs domain.BlobStore, p imports.Progress) (imports.Result, error) {
			f, err := os.CreateTemp("", "strand-*.bundle")
			if err != nil {
				return imports.Result{}, domain.Wrap(err, "temporary bundle file")
			}
			defer os.Remove(f.Name())
			_, err = io.Copy(f, blobs.ChunkReader(ctx, chunks))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return imports.Result{}, err
			}
			return imports.Git(ctx, f.Name(), g.Ref, blobs, lim, p)
		}}, nil
	}
	if !s.opts.AllowDirImport {
		return importSpec{}, domain.Errorf(domain.CodeForbidden, "importing a directory of the server host is off; the operator enables it with strand serve --allow-dir-import")
	}
	d := *req.Dir
	if !filepath.IsAbs(d.Path) {
		return importSpec{}, domain.Errorf(domain.CodeInvalidArgument, "dir path must be absolute")
	}
	return importSpec{
		origin: domain.RevisionOrigin{Kind: domain.OriginDir, Path: d.Path},
		run: func(ctx context.Context, blobs domain.BlobStore, p imports.Progress) (imports.Result, error) {
			return imports.Dir(ctx, d.Path, blobs, lim, p)
		},
	}, nil
}

// archiveID names an upload by its chunks: the hash of the list.
func archiveID(chunks []domain.Hash) string {
	b := make([]byte, 0, len(chunks)*32)
	for _, c := range chunks {
		b = append(b, c[:]...)
	}
	return domain.Sum(b).String()
}

// jobRunner runs the import jobs this instance accepted, each on its own
// goroutine, and stops them when the service stops.
type jobRunner struct {
	mu       sync.Mutex
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	instance string
}

func (s *Service) instance() string {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	if s.jobs.instance == "" {
		host, _ := os.Hostname()
		s.jobs.instance = host + "/" + s.opts.NewID()
	}
	return s.jobs.instance
}

func (s *Service) jobTimeout() time.Duration {
	if s.opts.JobTimeout > 0 {
		return s.opts.JobTimeout
	}
	return DefaultJobTimeout
}

func (r *jobRunner) context() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil {
		r.ctx, r.cancel = context.WithCancel(context.Background())
	}
	return r.ctx
}

// stop cancels the running jobs and waits until each recorded how it ended.
func (r *jobRunner) stop() {
	r.mu.Lock()
	if r.cancel != nil {
		r.cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *jobRunner) start(s *Service, job *domain.Job, spec importSpec, ev *domain.SourceEvent) {
	ctx := r.context()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		s.runJob(ctx, job, spec, ev)
	}()
}

// runJob runs one import: it reads the input into blobs and a tree, stores
// the tree, adds the revision, and records progress, a heartbeat and the
// outcome in the job bucket. A failure adds no revision.
func (s *Service) runJob(ctx context.Context, job *domain.Job, spec importSpec, ev *domain.SourceEvent) {
	log := s.opts.Log.With("job", job.ID, "tenant", job.Tenant, "source", job.Source)
	var mu sync.Mutex // guards job
	var files, bytes atomic.Int64
	save := func(change func(j *domain.Job)) bool {
		mu.Lock()
		defer mu.Unlock()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		change(job)
		job.Files, job.Bytes = max(job.Files, files.Load()), max(job.Bytes, bytes.Load())
		now := s.opts.Now()
		job.UpdatedAt, job.Heartbeat = now, now
		if err := s.store.UpdateJob(sctx, job); err != nil {
			log.Warn("job update failed", "err", err)
			return !errors.Is(err, domain.ErrJobMoved)
		}
		return true
	}
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !save(func(j *domain.Job) { j.State = domain.JobRunning }) {
		return
	}
	beat := make(chan struct{})
	go func() {
		defer close(beat)
		t := time.NewTicker(s.jobTimeout() / 4)
		defer t.Stop()
		for {
			select {
			case <-jctx.Done():
				return
			case <-t.C:
				if !save(func(*domain.Job) {}) {
					cancel() // another instance declared the job failed
					return
				}
			}
		}
	}()
	rev, root, err := s.importRevision(jctx, job, spec, ev, func(f, b int64) { files.Store(f); bytes.Store(b) })
	cancel()
	<-beat
	save(func(j *domain.Job) {
		if err == nil {
			j.State, j.Revision, j.Root = domain.JobSucceeded, rev, root
			return
		}
		j.State = domain.JobFailed
		j.ErrorCode, j.ErrorMessage = string(domain.ErrorCode(err)), domain.ErrorMessage(err)
		if ctx.Err() != nil {
			j.ErrorCode, j.ErrorMessage = string(domain.CodeUnavailable), "the service stopped while the job ran; start the import again"
		} else if domain.ErrorCode(err) == domain.CodeInternal {
			log.Error("import failed", "err", err)
		}
	})
}

func (s *Service) importRevision(ctx context.Context, job *domain.Job, spec importSpec, ev *domain.SourceEvent, progress imports.Progress) (uint64, string, error) {
	res, err := spec.run(ctx, s.blobs, progress)
	if err != nil {
		return 0, "", err
	}
	progress(res.Files, res.Bytes)
	blob, err := s.store.PutTree(ctx, res.Tree)
	if err != nil {
		return 0, "", err
	}
	origin := spec.origin
	origin.Commit = res.Commit
	ev.Time = s.opts.Now().UnixNano()
	c := &call{ctx: ctx, tenant: job.Tenant, svc: s}
	out, err := c.addRevision(ev, job.Source, domain.Revision{
		Root: res.Tree.Hash().Bytes(), Tree: blob.Bytes(), Files: res.Files, Bytes: res.Bytes, Origin: origin,
	})
	if err != nil {
		return 0, "", err
	}
	// A retried import that found its revision stored already gets the
	// source as that revision left it.
	r, _ := out.Source.Latest()
	return r.Number, res.Tree.Hash().String(), nil
}
