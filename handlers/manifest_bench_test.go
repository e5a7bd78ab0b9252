package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/streams/streamstest"
)

// BenchmarkManifest_Page measures a page of a 20,000-file session's
// listing through the service (the Go client's MessagePack request, the
// session cached, its listing encoded already) next to a core NATS
// request whose reply has the same size, answered by a responder on the
// service's connection: bench row 4's comparison, without the bench's
// fixture in the heap. It reports both latencies and their ratio, and the
// process's CPU per request on each side (servers, service and client are
// all in this process), which a loaded machine distorts less.
func BenchmarkManifest_Page(b *testing.B) {
	env := streamstest.Start(b, streamstest.Options{})
	svc := handlers.NewService(env.Store, handlers.Options{})
	if err := svc.Start(env.NC); err != nil {
		b.Fatal(err)
	}
	defer svc.Stop()
	ctx := context.Background()
	cnc, err := env.Server.Connect()
	if err != nil {
		b.Fatal(err)
	}
	defer cnc.Close()
	cl := client.NewClient(cnc, "bench")
	sess, err := cl.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		b.Fatal(err)
	}
	id := sess.Session.ID
	const files, per = 20_000, 1_000
	for k := 0; k < files/per; k++ {
		ops := make([]client.BatchOp, per)
		for i := range ops {
			n := k*per + i
			ops[i] = client.BatchOp{Op: "write", Path: fmt.Sprintf("d%02d/sub%02d/file-%05d.go", n%50, n%7, n), Content: []byte(strconv.Itoa(n))}
		}
		if _, err := cl.Batch(ctx, client.BatchRequest{Session: id, Ops: ops}); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]byte, 1<<20)
	sub, err := env.NC.Subscribe("rawbench.echo", func(m *nats.Msg) {
		n, _ := strconv.Atoi(string(m.Data))
		_ = m.Respond(buf[:n])
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := env.NC.Flush(); err != nil {
		b.Fatal(err)
	}
	decoders := []struct {
		name string
		list func(client.ManifestRequest) error
	}{
		{"page", func(req client.ManifestRequest) error { _, err := cl.ManifestPage(ctx, req); return err }},
		{"reply", func(req client.ManifestRequest) error { _, err := cl.Manifest(ctx, req); return err }},
		// The MessagePack reply not decoded: the service's and the
		// transport's share of "page", without the client's.
		{"none", func(req client.ManifestRequest) error {
			req.Encoding = client.ManifestMsgpack
			body, _ := json.Marshal(req)
			_, err := cnc.Request(client.FSManifest.Subject("bench"), body, time.Second)
			return err
		}},
	}
	for _, limit := range []int{client.DefaultManifestLimit, client.MaxManifestLimit} {
		for _, d := range decoders {
			b.Run(fmt.Sprintf("limit=%d/%s", limit, d.name), func(b *testing.B) {
				req := client.ManifestRequest{Session: id, Limit: limit}
				first, err := cl.Manifest(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := json.Marshal(client.ManifestRequest{Session: id, Limit: limit, Encoding: client.ManifestMsgpack})
				resp, err := cnc.Request(client.FSManifest.Subject("bench"), body, time.Second)
				if err != nil {
					b.Fatal(err)
				}
				data := resp.Data
				if got, err := client.DecodeManifest(data); err != nil || len(got.Entries) != len(first.Entries) {
					b.Fatalf("reply of %d bytes: %d entries (%v), want %d", len(data), len(got.Entries), err, len(first.Entries))
				}
				size := []byte(strconv.Itoa(len(data)))
				var strandTime, rawTime, strandCPU, rawCPU time.Duration
				n := 0
				for b.Loop() {
					n++
					t0, c0 := time.Now(), processCPU()
					if err := d.list(req); err != nil {
						b.Fatal(err)
					}
					t1, c1 := time.Now(), processCPU()
					if _, err := cnc.Request("rawbench.echo", size, time.Second); err != nil {
						b.Fatal(err)
					}
					strandTime += t1.Sub(t0)
					rawTime += time.Since(t1)
					strandCPU += c1 - c0
					rawCPU += processCPU() - c1
				}
				b.ReportMetric(float64(strandTime.Microseconds())/float64(n), "strand-µs/op")
				b.ReportMetric(float64(rawTime.Microseconds())/float64(n), "raw-µs/op")
				b.ReportMetric(float64(strandTime)/float64(rawTime), "strand/raw")
				b.ReportMetric(float64(strandCPU.Microseconds())/float64(n), "strand-cpu-µs/op")
				b.ReportMetric(float64(rawCPU.Microseconds())/float64(n), "raw-cpu-µs/op")
				b.ReportMetric(float64(len(data)), "reply-bytes")
			})
		}
	}
}

// processCPU is the CPU time the process has used (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
