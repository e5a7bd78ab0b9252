package streams

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// TestRequestIndex_Polls: the request index records every request id a
// session's events carry, taking them from its consumer in fetches; when
// the consumer goes away (deleted here, as an operator or a lost stream
// leader might), the indexer opens it again (made anew one request window
// back) and ids written after are recorded too.
func TestRequestIndex_Polls(t *testing.T) {
	env := startEnv(t)
	st := env.open(t)
	ctx := context.Background()
	at := time.Unix(1700000000, 0).UTC()
	session := "01J00000000000000000000RI0"
	n := 0
	meta := func(req string) domain.Meta {
		n++
		return domain.Meta{EventID: fmt.Sprintf("01J000000000000000000%05d", n), Actor: "t", Time: at.Add(time.Duration(n) * time.Second), RequestID: req}
	}
	if _, err := st.Create(ctx, meta(""), domain.CreateSession{ID: session, Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	positions := map[string]uint64{}
	write := func(req string) {
		t.Helper()
		res, err := st.Change(ctx, "acme", session, meta(req), func(*domain.Session) (domain.Command, error) {
			return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: "f", Data: []byte(req), Content: domain.Sum([]byte(req)), Size: int64(len(req))}}}, nil
		})
		if err != nil {
			t.Fatalf("write %s: %v", req, err)
		}
		positions[req] = res.Position
	}
	// More than one fetch's worth.
	for i := range indexFetch + 300 {
		write(fmt.Sprintf("a%d", i))
	}
	indexed := func(reqs ...string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for _, req := range reqs {
			for {
				seq, ok, err := st.requestSequence(ctx, msgID("acme", session, req))
				if err != nil {
					t.Fatalf("look up %s: %v", req, err)
				}
				if ok {
					if seq != positions[req] {
						t.Fatalf("%s indexed at %d, its event is at %d", req, seq, positions[req])
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s not indexed after 30 s", req)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	indexed("a0", fmt.Sprintf("a%d", indexFetch-1), fmt.Sprintf("a%d", indexFetch), fmt.Sprintf("a%d", indexFetch+299))

	if err := st.js.DeleteConsumer(ctx, names.EventStream, eventIndexDurable); err != nil {
		t.Fatal(err)
	}
	write("after")
	indexed("after")
}
