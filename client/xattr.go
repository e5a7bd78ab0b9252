package client

import (
	"context"
)

// XattrRequest is the body of fs.xattr.{set,get,list,remove}.
type XattrRequest struct {
	Mutation
	Session string `json:"session"`
	Path    string `json:"path"`
	Name    string `json:"name,omitempty"`
	Value   []byte `json:"value,omitempty"`
	At      At     `json:"at,omitempty"`
}

// XattrReply answers the xattr requests: one attribute (get, set) or all
// of a path's (list).
type XattrReply struct {
	Path     string            `json:"path"`
	Xattrs   map[string][]byte `json:"xattrs,omitempty"`
	Name     string            `json:"name,omitempty"`
	Value    []byte            `json:"value,omitempty"`
	Position uint64            `json:"position"`
	Root     string            `json:"root,omitempty"`
	Replayed bool              `json:"replayed,omitempty"`
}

// Xattr runs fs.xattr.set, get, list or remove.
func (c *Client) Xattr(ctx context.Context, verb string, req XattrRequest) (XattrReply, error) {
	var r XattrReply
	return r, c.Request(ctx, FSXattrGet.Area, "xattr."+verb, req, &r)
}
