package client

import (
	"bytes"
	"context"
	"io"
)

// SyncRequest is the body of fs.sync: a tar or tar.gz archive, uploaded in
// chunks with source.upload, applied to a session as one batch. Files,
// symlinks and directories of the archive are written where they differ;
// with Delete, paths the archive lacks are removed too.
type SyncRequest struct {
	Mutation
	Session string   `json:"session"`
	Tar     *TarSpec `json:"tar"`
	Delete  bool     `json:"delete,omitempty"`
}

// SyncReply answers fs.sync. Changed is false when the session already
// held the archive's content: nothing was written.
type SyncReply struct {
	ChangeReply
	Changed bool `json:"changed"`
	Written int  `json:"written"`
	Removed int  `json:"removed"`
}

// Sync applies a tar archive to a session as one batch: it uploads the
// archive in chunks, then asks fs.sync.
func (c *Client) Sync(ctx context.Context, session string, archive []byte, del bool, m Mutation) (SyncReply, error) {
	return c.SyncFrom(ctx, session, bytes.NewReader(archive), del, m)
}

// SyncFrom is Sync of an archive read from r, uploaded a chunk at a time
// as it is read.
func (c *Client) SyncFrom(ctx context.Context, session string, archive io.Reader, del bool, m Mutation) (SyncReply, error) {
	chunks, err := c.UploadArchiveFrom(ctx, archive)
	if err != nil {
		return SyncReply{}, err
	}
	var r SyncReply
	return r, c.Call(ctx, FSSync, SyncRequest{Mutation: m, Session: session, Tar: &TarSpec{Chunks: chunks}, Delete: del}, &r)
}
