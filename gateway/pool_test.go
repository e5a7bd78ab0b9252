package gateway

import (
	"testing"
	"time"

	"github.com/strand-dev/strand/streams/streamstest"
)

// TestPool_Bounds: one connection per credential, the least recently used
// idle one closed beyond the bound, idle ones closed after the idle time,
// and none closed while a request holds it.
func TestPool_Bounds(t *testing.T) {
	env := streamstest.Start(t)
	now := time.Unix(1_700_000_000, 0)
	p := newPool(env.Server.ClientURL(), nil, time.Minute, 2)
	p.now = func() time.Time { return now }
	t.Cleanup(p.close)
	// A server without authentication lets any credential in: each is
	// still its own connection.
	a, b, c := Credential{User: "a", Password: "x"}, Credential{User: "b", Password: "x"}, Credential{Token: "t"}

	pa, err := p.acquire(a)
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.acquire(a)
	if err != nil || again != pa {
		t.Fatalf("second acquire of one credential: %p %v, want the same connection %p", again, err, pa)
	}
	p.release(again)
	p.release(pa)
	now = now.Add(time.Second)
	pb, err := p.acquire(b)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	pc, err := p.acquire(c) // over the bound: a, idle and oldest, goes
	if err != nil {
		t.Fatal(err)
	}
	if p.size() != 2 || !pa.nc.IsClosed() || pb.nc.IsClosed() || pc.nc.IsClosed() {
		t.Errorf("after a third credential: %d open, a closed %v, b %v, c %v; want 2, only a closed",
			p.size(), pa.nc.IsClosed(), pb.nc.IsClosed(), pc.nc.IsClosed())
	}
	p.release(pb)
	now = now.Add(2 * time.Minute)
	p.reap() // b idle for 2 minutes goes; c is held
	if !pb.nc.IsClosed() || pc.nc.IsClosed() || p.size() != 1 {
		t.Errorf("after reap: b closed %v, c closed %v, %d open; want b closed, c open (held), 1", pb.nc.IsClosed(), pc.nc.IsClosed(), p.size())
	}
	p.release(pc)
	now = now.Add(2 * time.Minute)
	p.reap()
	if p.size() != 0 {
		t.Errorf("%d open after every credential went idle, want 0", p.size())
	}
}
