package handlers_test

import (
	"reflect"
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// TestFS_ManifestEncoding holds the MessagePack manifest (what the Go
// client asks for) to the JSON one: for every prefix, page size, cursor and
// with or without xattrs, both decode to the same page.
func TestFS_ManifestEncoding(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := tree(t, h)
	if _, err := h.c.Xattr(ctx, "set", client.XattrRequest{Session: id, Path: "a.txt", Name: "user.tag", Value: []byte{0, 1, 0xff}}); err != nil {
		t.Fatalf("set xattr: %v", err)
	}

	for _, prefix := range []string{"", "src/", "src/ma", "nope"} {
		for _, limit := range []int{0, 1, 3} {
			for _, xattrs := range []bool{false, true} {
				req := client.ManifestRequest{Session: id, Prefix: prefix, Limit: limit, Xattrs: xattrs}
				for pages := 0; ; pages++ {
					if pages > 20 {
						t.Fatalf("prefix %q limit %d: no end after 20 pages", prefix, limit)
					}
					req.Encoding = client.ManifestJSON
					j, err := h.c.Manifest(ctx, req)
					if err != nil {
						t.Fatalf("json manifest %+v: %v", req, err)
					}
					req.Encoding = client.ManifestMsgpack
					m, err := h.c.Manifest(ctx, req)
					if err != nil {
						t.Fatalf("msgpack manifest %+v: %v", req, err)
					}
					if !reflect.DeepEqual(j, m) {
						t.Fatalf("manifest %+v: msgpack gave %s, json %s", req, asJSON(m), asJSON(j))
					}
					if j.NextCursor == "" {
						break
					}
					req.After = j.NextCursor
				}
			}
		}
	}

	t.Run("XattrsCarried", func(t *testing.T) {
		r, err := h.c.Manifest(ctx, client.ManifestRequest{Session: id, Prefix: "a", Xattrs: true})
		if err != nil {
			t.Fatalf("manifest: %v", err)
		}
		if len(r.Entries) != 1 || string(r.Entries[0].Xattrs["user.tag"]) != "\x00\x01\xff" {
			t.Errorf("got %s, want a.txt with user.tag", asJSON(r))
		}
	})

	t.Run("DefaultIsJSON", func(t *testing.T) {
		// A caller that names no encoding (any language) gets JSON.
		var r client.ManifestReply
		if err := h.c.Request(ctx, "fs", "manifest", map[string]any{"session": id}, &r); err != nil {
			t.Fatalf("manifest without encoding: %v", err)
		}
		if len(r.Entries) != len(treeOrder) {
			t.Errorf("got %d entries, want %d", len(r.Entries), len(treeOrder))
		}
	})

	t.Run("UnknownEncoding", func(t *testing.T) {
		for _, enc := range []string{"xml", "JSON", "msgpack "} {
			_, err := h.c.Manifest(ctx, client.ManifestRequest{Session: id, Encoding: enc})
			wantCode(t, "encoding "+enc, err, domain.CodeInvalidArgument)
		}
	})
}
