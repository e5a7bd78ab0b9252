package client

import (
	"context"
	"strings"
	"time"

	"github.com/strand-dev/strand/names"
)

// SecretRequest is the body of secret.put, secret.get and secret.delete.
// Session names the scope: a session's own secrets, or "" for the
// tenant's.
type SecretRequest struct {
	Mutation
	Session string `json:"session,omitempty"`
	Name    string `json:"name"`
	// Value is the secret (put only). It is never echoed back, logged or
	// recorded in an event.
	Value *string `json:"value,omitempty"`
}

// SecretView describes a secret without its value.
type SecretView struct {
	Name    string    `json:"name"`
	Scope   string    `json:"scope"`
	Session string    `json:"session,omitempty"`
	Version uint64    `json:"version"`
	Size    int       `json:"size"`
	Actor   string    `json:"actor"`
	Time    time.Time `json:"time"`
}

// SecretReply answers secret.put, secret.get and secret.delete; Value is
// set by secret.get only.
type SecretReply struct {
	Secret SecretView `json:"secret"`
	Value  string     `json:"value,omitempty"`
}

// SecretListRequest is the body of secret.list: a session's secrets and
// its tenant's, or the tenant's alone.
type SecretListRequest struct {
	Session string `json:"session,omitempty"`
}

// SecretListReply answers secret.list.
type SecretListReply struct {
	Secrets []SecretView `json:"secrets"`
}

// SecretRekeyReply answers secret.rekey.
type SecretRekeyReply struct {
	Key      string `json:"key"`
	Resealed int    `json:"resealed"`
}

// PutSecret stores a secret's value (a new version).
func (c *Client) PutSecret(ctx context.Context, req SecretRequest) (SecretReply, error) {
	var r SecretReply
	return r, c.Call(ctx, SecretPut, req, &r)
}

// GetSecret reads a secret's value: a session's own, else its tenant's
// (req.Session set), or a tenant's. It asks on the scope's own subject,
// strand.v1.<tenant>.secret.get.<session|tenant>.
func (c *Client) GetSecret(ctx context.Context, req SecretRequest) (SecretReply, error) {
	scope := names.SecretScopeTenant
	if req.Session != "" {
		scope = strings.ToUpper(req.Session)
	}
	var r SecretReply
	return r, c.CallScoped(ctx, SecretGet, scope, req, &r)
}

// ListSecrets lists secrets without their values.
func (c *Client) ListSecrets(ctx context.Context, req SecretListRequest) (SecretListReply, error) {
	var r SecretListReply
	return r, c.Call(ctx, SecretList, req, &r)
}

// DeleteSecret deletes a secret.
func (c *Client) DeleteSecret(ctx context.Context, req SecretRequest) (SecretReply, error) {
	var r SecretReply
	return r, c.Call(ctx, SecretDelete, req, &r)
}

// RekeySecrets seals every secret of the tenant again under the newest key.
func (c *Client) RekeySecrets(ctx context.Context, req Mutation) (SecretRekeyReply, error) {
	var r SecretRekeyReply
	return r, c.Call(ctx, SecretRekey, req, &r)
}
