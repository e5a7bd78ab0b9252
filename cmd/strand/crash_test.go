package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
)

// serveProcess is `strand serve` running as a child process: the test
// binary re-executed with STRAND_TEST_MAIN=1 (see TestMain).
type serveProcess struct {
	cmd    *exec.Cmd
	URL    string
	stderr *syncBuffer
	exited chan struct{}
}

// startServeProcess starts serve on dir and addr and waits for its
// "serving on" line.
func startServeProcess(t *testing.T, dir, addr string, extra ...string) *serveProcess {
	t.Helper()
	args := append([]string{"-test.run=^$", "--", "serve", "--data", dir, "--listen", addr, "--http", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "STRAND_TEST_MAIN=1")
	p := &serveProcess{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start serve process: %v", err)
	}
	t.Cleanup(func() { p.kill(t) })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if _, rest, ok := strings.Cut(line, "serving on "); ok {
				url, _, _ := strings.Cut(rest, " ")
				select {
				case ready <- url:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait() // after the last read of the pipe, as Wait requires
		close(p.exited)
	}()
	select {
	case p.URL = <-ready:
	case <-p.exited:
		t.Fatalf("serve process exited before serving (%v); stderr:\n%s", cmd.ProcessState, p.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("serve process not serving after 60s; stderr:\n%s", p.stderr)
	}
	return p
}

// kill sends SIGKILL, the crash that allows no shutdown at all, and waits
// for the process to be gone.
func (p *serveProcess) kill(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Errorf("kill serve process: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("serve process still running 30s after SIGKILL")
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// crashOp is one write of the crash test and what became of it.
type crashOp struct {
	session, path, requestID string
	content                  []byte

	// sent: the request may have reached the server. acked: its reply came
	// back, so the write is acknowledged.
	sent, acked bool
	reply       client.ChangeReply
	err         error
	errAfter    bool // err came after the kill
}

func crashContent(i int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 42))
	b := make([]byte, 1+r.IntN(40<<10))
	for j := range b {
		b[j] = byte(r.Uint32())
	}
	copy(b, fmt.Sprintf("op %d\n", i))
	return b
}

// TestServe_CrashKeepsAcknowledgedWrites kills a serving process with
// SIGKILL while writes are in flight, restarts it on the same data folder,
// and checks invariant 1: every acknowledged write is there, at its
// position, with its content, exactly once.
//
// What can be asserted about a write that was in flight at the kill (sent,
// no reply) is only that it landed once or not at all. So a session's event
// count is exactly 1+acked when none of its writes was in flight, and between
// 1+acked and 1+acked+inflight otherwise. Retrying every in-flight write with
// its request id then makes each session hold every write exactly once.
func TestServe_CrashKeepsAcknowledgedWrites(t *testing.T) {
	t.Parallel()
	const (
		sessions  = 4
		writers   = 8 // two per session, so appends to a session race
		planned   = 200
		killAfter = 120 // acknowledged writes before the SIGKILL
	)
	dir, addr := t.TempDir(), freeAddr(t)
	// Snapshots every 7 events: the crash may also cut a snapshot short.
	srv := startServeProcess(t, dir, addr, "--snapshot-every", "7")

	ctx := context.Background()
	setup, err := nats.Connect(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	cl := client.NewClient(setup, "default")
	var ids []string
	for range sessions {
		r, err := cl.CreateSession(ctx, client.CreateSessionRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Session.ID)
	}
	setup.Close()

	ops := make([]*crashOp, planned)
	for i := range ops {
		ops[i] = &crashOp{
			session:   ids[i%writers%sessions],
			path:      fmt.Sprintf("w%d/f%03d.bin", i%writers, i),
			requestID: fmt.Sprintf("crash-%03d", i),
			content:   crashContent(i),
		}
	}

	// The load: no reconnect, so that nothing buffered during the outage is
	// sent to the restarted server behind the test's back.
	nc, err := nats.Connect(srv.URL, nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	load := client.NewClient(nc, "default")
	load.ChunkSize = 16 << 10 // larger files go up in chunks before their event
	loadCtx, stopLoad := context.WithCancel(ctx)
	var acked, inflight atomic.Int64
	var killed atomic.Bool
	killNow := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < planned; i += writers {
				op := ops[i]
				if loadCtx.Err() != nil {
					return
				}
				op.sent = true
				inflight.Add(1)
				r, err := load.Write(loadCtx, client.WriteRequest{
					Mutation: client.Mutation{RequestID: op.requestID},
					Session:  op.session, Path: op.path, Content: op.content,
				})
				inflight.Add(-1)
				if err != nil {
					op.err, op.errAfter = err, killed.Load()
					return
				}
				op.acked, op.reply = true, r
				if acked.Add(1) == killAfter {
					close(killNow)
				}
			}
		}()
	}
	select {
	case <-killNow:
	case <-time.After(60 * time.Second):
		t.Fatalf("only %d writes acknowledged after 60s", acked.Load())
	}
	killed.Store(true)
	inflightAtKill := inflight.Load()
	srv.kill(t)
	stopLoad()
	wg.Wait()
	nc.Close()

	perSession := map[string]struct{ acked, uncertain int }{}
	var nAcked, nUncertain int
	for i, op := range ops {
		if op.err != nil && !op.errAfter {
			t.Errorf("write %d failed before the kill: %v", i, op.err)
		}
		c := perSession[op.session]
		switch {
		case op.acked:
			c.acked++
			nAcked++
		case op.sent:
			c.uncertain++
			nUncertain++
		}
		perSession[op.session] = c
	}
	t.Logf("SIGKILL with %d writes in flight: %d acknowledged, %d sent without a reply, %d never sent",
		inflightAtKill, nAcked, nUncertain, planned-nAcked-nUncertain)

	// Restart on the same folder and port.
	srv = startServeProcess(t, dir, addr, "--snapshot-every", "7")
	vc, err := nats.Connect(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	verify := client.NewClient(vc, "default")

	// Every acknowledged write reads back, at its position, as written.
	for _, op := range ops {
		if !op.acked {
			continue
		}
		at := client.AtPosition(op.reply.Position)
		data, rr, err := verify.ReadAll(ctx, op.session, op.path, at)
		if err != nil {
			t.Errorf("after the crash, read %s %s at %d: %v", op.session, op.path, op.reply.Position, err)
			continue
		}
		if string(data) != string(op.content) || rr.Hash != op.reply.Hash || rr.Hash != sha(op.content) {
			t.Errorf("after the crash, %s %s at %d: got %d bytes hash %s, want %d bytes hash %s",
				op.session, op.path, op.reply.Position, len(data), rr.Hash, len(op.content), op.reply.Hash)
		}
	}

	byRequest := map[string]*crashOp{}
	for _, op := range ops {
		byRequest[op.requestID] = op
	}
	events := func(id string) []client.EventView {
		t.Helper()
		var all []client.EventView
		var from uint64
		for {
			r, err := verify.Events(ctx, client.EventsRequest{Session: id, From: from, Limit: client.MaxEventsLimit})
			if err != nil {
				t.Fatalf("events of %s: %v", id, err)
			}
			all = append(all, r.Events...)
			if r.NextFrom == 0 {
				return all
			}
			from = r.NextFrom
		}
	}
	// landed maps each request id found in the history to its position.
	landed := map[string]uint64{}
	for _, id := range ids {
		evs := events(id)
		c := perSession[id]
		n := len(evs)
		if c.uncertain == 0 && n != 1+c.acked {
			t.Errorf("session %s: %d events after the crash, want exactly 1 create + %d acknowledged writes (none was in flight)", id, n, c.acked)
		}
		if c.uncertain > 0 && (n < 1+c.acked || n > 1+c.acked+c.uncertain) {
			t.Errorf("session %s: %d events after the crash, want between %d and %d (%d acknowledged, %d in flight)",
				id, n, 1+c.acked, 1+c.acked+c.uncertain, c.acked, c.uncertain)
		}
		prev := ""
		for i, e := range evs {
			if e.Prev != prev {
				t.Errorf("session %s event %d at %d: prev %q, want %q (broken hash chain)", id, i, e.Position, e.Prev, prev)
			}
			prev = e.Hash
			if i == 0 {
				if e.Type != "SessionCreated" {
					t.Errorf("session %s: first event %s, want SessionCreated", id, e.Type)
				}
				continue
			}
			op := byRequest[e.RequestID]
			switch {
			case op == nil || op.session != id || !op.sent:
				t.Errorf("session %s: event at %d (request %q) was never sent to this session", id, e.Position, e.RequestID)
				continue
			case landed[e.RequestID] != 0:
				t.Errorf("session %s: request %s stored twice, at %d and %d", id, e.RequestID, landed[e.RequestID], e.Position)
			}
			landed[e.RequestID] = e.Position
			if e.Type != "FileWritten" || len(e.Ops) != 1 || e.Ops[0].Path != op.path || e.Ops[0].Hash != sha(op.content) {
				t.Errorf("session %s: event at %d = %+v, want FileWritten of %s with hash %s", id, e.Position, e, op.path, sha(op.content))
			}
			if op.acked && e.Position != op.reply.Position {
				t.Errorf("session %s: %s stored at %d, but its reply said %d", id, op.requestID, e.Position, op.reply.Position)
			}
		}
	}
	for _, op := range ops {
		if op.acked && landed[op.requestID] == 0 {
			t.Errorf("acknowledged write %s (%s %s at %d) is missing after the crash", op.requestID, op.session, op.path, op.reply.Position)
		}
	}

	inflightLanded := 0
	for _, op := range ops {
		if _, ok := landed[op.requestID]; ok && !op.acked {
			inflightLanded++
		}
	}
	t.Logf("after the restart: %d of the %d writes without a reply had landed", inflightLanded, nUncertain)

	// A write in flight at the crash is retried with its request id: stored
	// once whether or not the first attempt landed.
	for _, op := range ops {
		if !op.sent || op.acked {
			continue
		}
		r, err := verify.Write(ctx, client.WriteRequest{
			Mutation: client.Mutation{RequestID: op.requestID},
			Session:  op.session, Path: op.path, Content: op.content,
		})
		if err != nil {
			t.Errorf("retry of %s after the crash: %v", op.requestID, err)
			continue
		}
		if pos, ok := landed[op.requestID]; ok && (!r.Replayed || r.Position != pos) {
			t.Errorf("retry of %s, which landed at %d before the crash = position %d replayed %v; want %d replayed",
				op.requestID, pos, r.Position, r.Replayed, pos)
		}
		if _, ok := landed[op.requestID]; !ok && r.Replayed {
			t.Errorf("retry of %s, which had not landed, answered as replayed at %d", op.requestID, r.Position)
		}
		op.acked, op.reply = true, r
	}
	for _, id := range ids {
		c := perSession[id]
		if n := len(events(id)); n != 1+c.acked+c.uncertain {
			t.Errorf("session %s after retries: %d events, want 1 + %d writes, each exactly once", id, n, c.acked+c.uncertain)
		}
	}
	// And the head holds every file that was ever sent.
	for _, op := range ops {
		if !op.acked {
			continue
		}
		rr, err := verify.Read(ctx, client.ReadRequest{Session: op.session, Path: op.path, Length: 1})
		if err != nil || rr.Hash != sha(op.content) {
			t.Errorf("head of %s: %s = %+v, %v; want hash %s", op.session, op.path, rr.Hash, err, sha(op.content))
		}
	}
	if t.Failed() {
		t.Logf("serve stderr after restart:\n%s", srv.stderr)
	}
}
