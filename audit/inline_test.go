package audit_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/audit"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// TestReader_VerifyInlineContent checks inline content (design record
// 0009): an intact inline write verifies clean and names no blob; one whose
// bytes were altered before it was stored (the hash chain and the root,
// which covers the content hash, cannot tell) is a blob finding.
func TestReader_VerifyInlineContent(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	m := func(id string) domain.Meta {
		return domain.Meta{EventID: id, Actor: "a", Time: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	}
	res, err := env.Store.Create(ctx, m("01J0000000000000000000000A"), domain.CreateSession{ID: "S1", Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("inline bytes\n")
	write := domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: "a.txt", Content: domain.Sum(data), Size: int64(len(data)), Data: data}}}
	res, err = env.Store.Change(ctx, "acme", "S1", m("01J0000000000000000000000B"), func(*domain.Session) (domain.Command, error) { return write, nil })
	if err != nil {
		t.Fatal(err)
	}
	r, err := audit.Open(ctx, env.NC, audit.Streams{})
	if err != nil {
		t.Fatal(err)
	}
	if rep := verify(t, r, audit.Scope{}); !rep.OK() || rep.Blobs != 0 {
		t.Fatalf("intact: findings %v, %d blobs checked; want none and none", rep.Findings, rep.Blobs)
	}

	// The next event, decided correctly and altered before the append.
	ev, _, err := domain.Execute(res.Session, domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: "b.txt", Content: domain.Sum(data), Size: int64(len(data)), Data: data}}},
		m("01J0000000000000000000000C"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ev.Ops[0].Data = []byte("INLINE bytes\n")
	body, err := ev.Encode()
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(names.EventSubject("acme", "S1"))
	msg.Header.Set(names.HeaderType, string(ev.Type))
	msg.Header.Set(names.HeaderVersion, strconv.FormatUint(ev.Version, 10))
	msg.Data = body
	if _, err := env.Store.JetStream().PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(res.Position)); err != nil {
		t.Fatal(err)
	}
	rep := verify(t, r, audit.Scope{})
	if len(rep.Findings) != 1 || rep.Findings[0].Kind != audit.KindBlob || !strings.Contains(rep.Findings[0].Message, "inline content of b.txt") {
		t.Fatalf("altered inline content: findings %v, want one blob finding on b.txt", rep.Findings)
	}
}
