package streams_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/streams"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEmbedded_Config starts the embedded server with configuration files
// and checks that the in-process connection gets in, in the right account,
// with JetStream.
func TestEmbedded_Config(t *testing.T) {
	cases := []struct {
		name, config string
		accounts     bool
		wantErr      string
	}{
		{"Token", `authorization { token: "s3cret-token" }`, false, ""},
		{"SingleUser", `authorization { user: admin, password: "pw" }`, false, ""},
		{"Users", `authorization { users: [{user: a, password: b}] }`, false, ""},
		// STRAND without "jetstream: enabled": the embedded server turns
		// it on.
		{"Accounts", `accounts { STRAND { users: [{user: s, password: p}] }, ACME { users: [{user: a, password: b}] } }`, true, ""},
		{"NoServiceAccount", `accounts { ACME { users: [{user: a, password: b}] } }`, true, "not STRAND"},
		{"Unparsable", `accounts {`, false, "configuration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			emb, err := streams.StartEmbedded(streams.EmbeddedOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:-1", ConfigFile: writeConfig(t, tc.config)})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					if err == nil {
						emb.Shutdown()
					}
					t.Fatalf("StartEmbedded: %v, want an error about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("StartEmbedded: %v", err)
			}
			t.Cleanup(emb.Shutdown)
			if emb.HasAccounts() != tc.accounts {
				t.Errorf("HasAccounts() = %v, want %v", emb.HasAccounts(), tc.accounts)
			}
			nc, err := emb.Connect()
			if err != nil {
				t.Fatalf("in-process connect: %v", err)
			}
			defer nc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			js, _ := jetstream.New(nc)
			if _, err := js.AccountInfo(ctx); err != nil {
				t.Fatalf("JetStream for the service's connection: %v", err)
			}
			// Without credentials the server refuses a TCP client.
			if c, err := nats.Connect(emb.ClientURL(), nats.MaxReconnects(0)); err == nil {
				c.Close()
				t.Errorf("anonymous TCP connection accepted")
			}
		})
	}
}
