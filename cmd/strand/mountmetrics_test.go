package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
)

// TestCLI_MountMetrics: strand mount --metrics serves the mount's figures
// to Prometheus: a read is counted (a hit or a miss) with the content's
// bytes fetched, a write is flushed and leaves nothing pending.
func TestCLI_MountMetrics(t *testing.T) {
	needFuse(t)
	srv := startServe(t, t.TempDir())
	c := newCLI(t, srv.URL)
	var created client.SessionReply
	c.okJSON(&created, "session", "create")
	id := created.Session.ID
	content := strings.Repeat("strand mount metrics\n", 400) // over the inline size: a blob
	c.run(content, "fs", "write", id, "doc.txt")
	dir, state, cache := t.TempDir(), t.TempDir(), t.TempDir()
	flags := []string{"--state", state, "--cache", cache}
	stderr, done := runMount(t, c, append([]string{"mount", id, dir, "--flush-interval", "100ms", "--metrics", "127.0.0.1:0"}, flags...)...)
	m := regexp.MustCompile(`metrics on (http://\S+/metrics)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no metrics address in stderr: %s", stderr)
	}
	scrape := func() map[string]float64 {
		t.Helper()
		resp, err := http.Get(m[1])
		if err != nil {
			t.Fatalf("scrape: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		out := map[string]float64{}
		for _, line := range strings.Split(string(body), "\n") {
			if !strings.HasPrefix(line, "strand_mount_") {
				continue
			}
			name, rest, _ := strings.Cut(line, "{")
			if !strings.Contains(rest, `session="`+id+`"`) || !strings.Contains(rest, `tenant="default"`) {
				t.Errorf("metric without the mount's labels: %s", line)
			}
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("metric %q: %v", line, err)
			}
			out[name] = v
		}
		return out
	}
	before := scrape()
	if before["strand_mount_cache_misses_total"] != 0 || before["strand_mount_flushes_total"] != 0 {
		t.Errorf("before any read or write: %v", before)
	}
	got, err := os.ReadFile(filepath.Join(dir, "doc.txt"))
	if err != nil || string(got) != content {
		t.Fatalf("read through the mount: %d bytes, %v", len(got), err)
	}
	writeFile(t, filepath.Join(dir, "new.txt"), "written through the mount\n")
	var after map[string]float64
	// A flush counts when it sends and ends once its journal is written:
	// wait for the end (the journal empties a moment before).
	waitFor(t, "the write flushed and counted", func() bool {
		after = scrape()
		return after["strand_mount_flushes_total"] >= 1 && after["strand_mount_journal_pending"] == 0 &&
			after["strand_mount_last_flush_timestamp_seconds"] > 0
	})
	// The mount fetches a tree's content ahead of reads (a walk in the
	// background), so the read may find it fetched already: a hit.
	if after["strand_mount_cache_misses_total"]+after["strand_mount_cache_hits_total"] < 1 || after["strand_mount_fetched_bytes_total"] < float64(len(content)) {
		t.Errorf("after a read of %d bytes: %v; want the read counted and the bytes fetched", len(content), after)
	}
	if after["strand_mount_position"] <= before["strand_mount_position"] || after["strand_mount_last_flush_timestamp_seconds"] < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("position %v -> %v, last flush %v: want the flush's position and time", before["strand_mount_position"], after["strand_mount_position"], after["strand_mount_last_flush_timestamp_seconds"])
	}
	c.ok(append([]string{"unmount", dir}, flags...)...)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("strand mount exited with %d; stderr: %s", code, stderr)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("strand mount did not exit after unmount")
	}
}
