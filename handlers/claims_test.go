package handlers_test

import (
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// TestClaims_NoContentByHashAcrossTenants: blobs are shared by all tenants,
// so knowing a hash must not let a tenant write (and then read) content it
// never uploaded.
func TestClaims_NoContentByHashAcrossTenants(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	secret := []byte("acme's secret plan")
	acme := h.session(t)
	up, err := h.c.Upload(ctx, acme, secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Write(ctx, client.WriteRequest{Session: acme, Path: "plan", Chunks: []string{up.Hash}}); err != nil {
		t.Fatalf("write by reference to an own upload: %v", err)
	}

	other := h.client("globex")
	s, err := other.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	h.unchanged(t, "write by reference to another tenant's content", func() {
		_, err = other.Write(ctx, client.WriteRequest{Session: s.Session.ID, Path: "stolen", Chunks: []string{up.Hash}})
		if got := client.ErrorCode(err); got != domain.CodeNotFound {
			t.Fatalf("got %v (%s), want not_found", err, got)
		}
	})
	// Uploading the same content itself is fine (and stored once).
	mine, err := other.Upload(ctx, s.Session.ID, secret)
	if err != nil || mine.Hash != up.Hash {
		t.Fatalf("own upload of equal content: %+v %v", mine, err)
	}
	if _, err := other.Write(ctx, client.WriteRequest{Session: s.Session.ID, Path: "mine", Chunks: []string{mine.Hash}}); err != nil {
		t.Fatalf("write by reference after an own upload: %v", err)
	}
}
