package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/strand-dev/strand/domain"
)

// SourceView is a source as shown to callers. Revisions are listed by
// source.get only.
type SourceView struct {
	Name        string         `json:"name"`
	Tenant      string         `json:"tenant"`
	Description string         `json:"description,omitempty"`
	Owner       string         `json:"owner,omitempty"`
	Deleted     bool           `json:"deleted,omitempty"`
	Latest      uint64         `json:"latest"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   time.Time      `json:"updated_at"`
	Revisions   []RevisionView `json:"revisions,omitempty"`
}

// RevisionView is one revision of a source.
type RevisionView struct {
	Number uint64                `json:"number"`
	Root   string                `json:"root"`
	Tree   string                `json:"tree"`
	Files  int64                 `json:"files"`
	Bytes  int64                 `json:"bytes"`
	Origin domain.RevisionOrigin `json:"origin"`
	Uses   []string              `json:"uses,omitempty"`
	// Gate is what the policy required of a promotion; Uses the approvals
	// that met it.
	Gate domain.Policy `json:"gate,omitempty"`
}

// SourceCreateRequest is the body of source.create. Blank adds revision 1,
// an empty tree, at once.
type SourceCreateRequest struct {
	Mutation
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Blank       bool   `json:"blank,omitempty"`
}

// SourceRequest names a source: source.get and source.delete.
type SourceRequest struct {
	Mutation
	Name string `json:"name"`
}

// SourceReply answers the source requests. Revision is the revision a
// request added (create with blank, promote).
type SourceReply struct {
	Source   SourceView `json:"source"`
	Revision uint64     `json:"revision,omitempty"`
	Replayed bool       `json:"replayed,omitempty"`
}

// SourceListReply answers source.list.
type SourceListReply struct {
	Sources []SourceView `json:"sources"`
}

// SourceUploadRequest is the body of source.upload: one chunk of an archive
// or bundle to import.
type SourceUploadRequest struct {
	Data []byte `json:"data"`
}

// TarSpec names an uploaded tar or tar.gz archive by its chunks, in order.
type TarSpec struct {
	Chunks []string `json:"chunks"`
}

// GitSpec names a git repository: a path on the server (a repository or a
// bundle file), or a bundle uploaded in chunks; Ref is a branch, tag or
// commit (default HEAD).
type GitSpec struct {
	Path   string   `json:"path,omitempty"`
	Chunks []string `json:"chunks,omitempty"`
	Ref    string   `json:"ref,omitempty"`
}

// DirSpec names a directory on the server host (allowed only when the
// operator started the service with --allow-dir-import).
type DirSpec struct {
	Path string `json:"path"`
}

// SourceImportRequest is the body of source.import: exactly one of Tar, Git
// and Dir. A request id makes a retry answer with the same job.
type SourceImportRequest struct {
	Mutation
	Name string   `json:"name"`
	Tar  *TarSpec `json:"tar,omitempty"`
	Git  *GitSpec `json:"git,omitempty"`
	Dir  *DirSpec `json:"dir,omitempty"`
}

// JobRequest is the body of source.job.
type JobRequest struct {
	Job string `json:"job"`
}

// JobReply answers source.import and source.job.
type JobReply struct {
	Job      domain.Job `json:"job"`
	Replayed bool       `json:"replayed,omitempty"`
}

// PromoteRequest is the body of source.promote: the session's tree at At
// (default: its head) becomes the source's next revision.
type PromoteRequest struct {
	Mutation
	Name    string `json:"name"`
	Session string `json:"session"`
	At      At     `json:"at,omitempty"`
}

// CreateSource creates a source.
func (c *Client) CreateSource(ctx context.Context, req SourceCreateRequest) (SourceReply, error) {
	var r SourceReply
	return r, c.Call(ctx, SourceCreate, req, &r)
}

// GetSource returns a source with its revisions.
func (c *Client) GetSource(ctx context.Context, name string) (SourceReply, error) {
	var r SourceReply
	return r, c.Call(ctx, SourceGet, SourceRequest{Name: name}, &r)
}

// ListSources lists the tenant's sources.
func (c *Client) ListSources(ctx context.Context) (SourceListReply, error) {
	var r SourceListReply
	return r, c.Call(ctx, SourceList, struct{}{}, &r)
}

// DeleteSource marks a source deleted.
func (c *Client) DeleteSource(ctx context.Context, req SourceRequest) (SourceReply, error) {
	var r SourceReply
	return r, c.Call(ctx, SourceDelete, req, &r)
}

// UploadSourceChunk stores one chunk of an archive or bundle to import.
func (c *Client) UploadSourceChunk(ctx context.Context, data []byte) (UploadReply, error) {
	var r UploadReply
	return r, c.callMsgpack(ctx, SourceUpload, SourceUploadRequest{Data: data}, &r)
}

// UploadArchive uploads content in chunks for source.import or fs.sync and
// returns the chunk hashes in order.
func (c *Client) UploadArchive(ctx context.Context, data []byte) ([]string, error) {
	return c.UploadArchiveFrom(ctx, bytes.NewReader(data))
}

// UploadArchiveFrom is UploadArchive of content read from r, a chunk at a
// time: an archive is never held in memory whole. Empty content is one
// empty chunk.
func (c *Client) UploadArchiveFrom(ctx context.Context, r io.Reader) ([]string, error) {
	var chunks []string
	buf := make([]byte, c.ChunkSize)
	for {
		n, err := io.ReadFull(r, buf)
		last := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !last {
			return nil, fmt.Errorf("read the archive: %w", err)
		}
		if n > 0 || len(chunks) == 0 {
			up, err := c.UploadSourceChunk(ctx, buf[:n])
			if err != nil {
				return nil, err
			}
			chunks = append(chunks, up.Hash)
		}
		if last {
			return chunks, nil
		}
	}
}

// ImportSource starts an import job.
func (c *Client) ImportSource(ctx context.Context, req SourceImportRequest) (JobReply, error) {
	var r JobReply
	return r, c.Call(ctx, SourceImport, req, &r)
}

// Job returns the state of a job.
func (c *Client) Job(ctx context.Context, id string) (JobReply, error) {
	var r JobReply
	return r, c.Call(ctx, SourceJob, JobRequest{Job: id}, &r)
}

// WaitJob polls a job until it ends or ctx does.
func (c *Client) WaitJob(ctx context.Context, id string, every time.Duration) (domain.Job, error) {
	for {
		r, err := c.Job(ctx, id)
		if err != nil {
			return domain.Job{}, err
		}
		if r.Job.Done() {
			return r.Job, nil
		}
		select {
		case <-ctx.Done():
			return r.Job, ctx.Err()
		case <-time.After(every):
		}
	}
}

// Promote makes a session's tree the next revision of a source.
func (c *Client) Promote(ctx context.Context, req PromoteRequest) (SourceReply, error) {
	var r SourceReply
	return r, c.Call(ctx, SourcePromote, req, &r)
}
