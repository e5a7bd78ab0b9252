package streams

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestEnsureStream_MatchesWhatItCreated: a stream ensureStream created
// matches its config as the server reports it back (defaults filled in), so
// the next instance to start reads it and leaves it alone instead of
// updating it, which could race with another instance creating it.
func TestEnsureStream_MatchesWhatItCreated(t *testing.T) {
	e, err := StartEmbedded(EmbeddedOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := Config{}.withDefaults()
	scs := []jetstream.StreamConfig{eventStreamConfig(c), blobStreamConfig(c), busStreamConfig(c), sourceStreamConfig(c)}
	for _, sc := range append(scs, backgroundStreamConfigs(c)...) {
		if err := ensureStream(ctx, js, sc); err != nil {
			t.Fatal(err)
		}
		s, err := js.Stream(ctx, sc.Name)
		if err != nil {
			t.Fatal(err)
		}
		if have := s.CachedInfo().Config; !streamConfigMatches(have, sc) {
			t.Errorf("%s as stored does not match its config:\nhave %+v\nwant %+v", sc.Name, have, sc)
		}
	}
}
