//go:build fault

package faults_test

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestFault_EmbeddedServerKilled: one `strand serve` (embedded nats-server)
// under load from four clients is SIGKILLed, restarted on the same data and
// port, and the same again. The clients reconnect and retry what got no
// answer. With fsync on every write (the default) nothing acknowledged may
// be lost; with --no-fsync neither, since a killed process (unlike a crashed
// machine) leaves what it wrote in the page cache. A third run has 32
// clients, enough for group commit's atomic batches.
func TestFault_EmbeddedServerKilled(t *testing.T) {
	for _, mode := range []struct {
		name string
		args []string
		// clients and sessions of the load: with 32 writers at once on
		// an fsyncing server, appends wait together in groups of 16 or
		// more and are stored as atomic batches (group commit), so the
		// kill can land in a batch's commit.
		clients, sessions int
	}{
		{"fsync", nil, 4, 6},
		{"no-fsync", []string{"--no-fsync"}, 4, 6},
		{"fsync-group-commit", nil, 32, 32},
	} {
		t.Run(mode.name, func(t *testing.T) {
			dir := t.TempDir()
			addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			url := "nats://" + addr
			args := append([]string{"--data", dir, "--listen", addr}, mode.args...)
			serve := func() *proc { return startServe(t, "strand serve (embedded)", args...) }
			p := serve()

			l := newLoad(t, "faults", mode.clients, func(int) string { return url })
			l.createSessions(mode.sessions)
			kill := func() {
				t.Logf("SIGKILL strand serve (pid %d)", p.cmd.Process.Pid)
				p.kill()
			}
			restart := func() {
				t.Logf("restart strand serve on %s", dir)
				p = serve()
			}
			l.runFor(25*time.Second, map[time.Duration]func(){
				5 * time.Second:  kill,
				7 * time.Second:  restart,
				14 * time.Second: kill,
				15 * time.Second: restart,
			})

			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			l.check(audit(t, ctx, connect(t, url), 1, "faults", l.sessions))
		})
	}
}
