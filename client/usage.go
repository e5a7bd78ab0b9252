package client

import "context"

// UsageRequest is the body of usage.get (the tenant is the subject's).
type UsageRequest struct{}

// StorageUsage are the bytes a tenant's data takes in the streams, from
// the stats projection (it lags the stream by the projection's delay) and
// the snapshot bucket. Blobs are content-addressed and shared by all
// tenants: a tenant is counted for every distinct content its events name,
// so two tenants that wrote the same file are each counted for it, and
// the tenants' BlobBytes may add up to more than the blob stream holds.
type StorageUsage struct {
	// EventBytes is what the tenant's events take in a file-stored event
	// stream (subject, headers, body and the file store's framing).
	EventBytes int64 `json:"event_bytes"`
	// Blobs and BlobBytes count the distinct contents (by SHA-256) that
	// the tenant's events name in the blob store, and their sizes (small
	// files travel inline in their events and are in EventBytes instead).
	Blobs     int64 `json:"blobs"`
	BlobBytes int64 `json:"blob_bytes"`
	// BlobBytesWritten is the content the tenant's writes sent to the blob
	// store, every write counted; DedupRatio is BlobBytesWritten /
	// BlobBytes: how many times over the tenant's blobs would be stored
	// without content addressing (1: no write repeated a content).
	BlobBytesWritten int64   `json:"blob_bytes_written"`
	DedupRatio       float64 `json:"dedup_ratio"`
	// SnapshotBytes is the size of the snapshot documents of the tenant's
	// sessions (a cache: deleting them changes no answer); Snapshots
	// counts them.
	SnapshotBytes uint64 `json:"snapshot_bytes"`
	Snapshots     int    `json:"snapshots"`
}

// DeploymentUsage are the bytes the deployment's streams hold, all
// tenants together, as JetStream reports them.
type DeploymentUsage struct {
	EventBytes    uint64 `json:"event_bytes"`
	BlobBytes     uint64 `json:"blob_bytes"`
	SnapshotBytes uint64 `json:"snapshot_bytes"`
}

// UsageReply answers usage.get.
type UsageReply struct {
	Tenant string `json:"tenant"`
	// Sessions counts the tenant's sessions that are not deleted;
	// SessionsByStatus all of them by status (the session-views
	// projection: it lags the stream by the projection's delay).
	Sessions         int64          `json:"sessions"`
	SessionsByStatus map[string]int `json:"sessions_by_status"`
	// Events counts the events stored for the tenant's sessions, counted
	// by the server on the event stream (exact, now).
	Events uint64 `json:"events"`
	// ContentBytes is the file content the tenant's sessions wrote, every
	// write counted (the stats projection).
	ContentBytes int64 `json:"content_bytes"`
	// Storage is the tenant's share of the streams; Deployment the
	// streams' totals.
	Storage    StorageUsage    `json:"storage"`
	Deployment DeploymentUsage `json:"deployment"`
	// Behind counts the events the stats projection has yet to fold, all
	// tenants together: Storage and ContentBytes are that far behind.
	Behind uint64 `json:"behind"`
	// Requests counts the tenant's requests by endpoint, every instance
	// of the deployment together and across restarts: the counters in
	// STRAND_USAGE, which each instance adds to every few seconds, plus
	// what the answering instance has not added yet (another instance's
	// latest requests may be missing for that long).
	Requests map[string]uint64 `json:"requests"`
}

// Usage returns the tenant's usage figures.
func (c *Client) Usage(ctx context.Context) (UsageReply, error) {
	var r UsageReply
	return r, c.Request(ctx, "usage", "get", UsageRequest{}, &r)
}
