package client

import "context"

// UsageRequest is the body of usage.get (the tenant is the subject's).
type UsageRequest struct{}

// StorageUsage are the bytes a deployment's streams hold. Blobs are
// content-addressed and shared by every tenant, so these are the
// deployment's figures, not one tenant's.
type StorageUsage struct {
	EventBytes    uint64 `json:"event_bytes"`
	BlobBytes     uint64 `json:"blob_bytes"`
	SnapshotBytes uint64 `json:"snapshot_bytes"`
	// ContentBytes is the file content every tenant's sessions were given
	// (each write counted, as for the bytes_stored quota);
	// DedupRatio is ContentBytes / BlobBytes: how many times over the
	// content store would be without content addressing.
	ContentBytes int64   `json:"content_bytes"`
	DedupRatio   float64 `json:"dedup_ratio"`
}

// UsageReply answers usage.get.
type UsageReply struct {
	Tenant string `json:"tenant"`
	// Sessions counts the tenant's sessions that are not deleted;
	// SessionsByStatus all of them by status (the session-views
	// projection: it lags the stream by the projection's delay).
	Sessions         int64          `json:"sessions"`
	SessionsByStatus map[string]int `json:"sessions_by_status"`
	// Events counts the events stored for the tenant's sessions.
	Events uint64 `json:"events"`
	// ContentBytes is the file content the tenant's sessions were given
	// (the bytes_stored quota's count; 0 with limits off).
	ContentBytes int64        `json:"content_bytes"`
	Storage      StorageUsage `json:"storage"`
	// Requests counts the tenant's requests by endpoint as seen by the
	// instance that answers, since it started (Prometheus's
	// strand_http_requests_total and micro's stats have the
	// deployment's).
	Requests map[string]uint64 `json:"requests"`
}

// Usage returns the tenant's usage figures.
func (c *Client) Usage(ctx context.Context) (UsageReply, error) {
	var r UsageReply
	return r, c.Request(ctx, "usage", "get", UsageRequest{}, &r)
}
