package mcp

import (
	"strings"
	"testing"
)

// TestTailBuffer_NoFragment checks that output cut at its head leaves no
// fragment of a secret value, and that whole values are replaced.
func TestTailBuffer_NoFragment(t *testing.T) {
	values := []secretValue{{name: "T", value: "s3cr3t-VALUE"}}
	for cut := 1; cut < len(values[0].value); cut++ {
		// The buffer keeps the last max bytes: make the head start inside
		// the value, cut bytes into it.
		tail := " then s3cr3t-VALUE again"
		b := &tailBuffer{max: len(values[0].value) - cut + len(tail)}
		_, _ = b.Write([]byte("head s3cr3t-VALUE" + tail))
		got, dropped := b.result(values, 1<<10)
		if got != " then [secret T] again" {
			t.Errorf("cut %d: got %q", cut, got)
		}
		if want := int64(len("head s3cr3t-VALUE")); dropped != want {
			t.Errorf("cut %d: dropped %d, want %d", cut, dropped, want)
		}
	}
	b := &tailBuffer{max: 1 << 10}
	_, _ = b.Write([]byte(strings.Repeat("x", 100) + "s3cr3t-VALUE"))
	got, dropped := b.result(values, 20)
	// The limit applies after the value is replaced: the redacted text is
	// 100 x's and the placeholder, and what is dropped is counted.
	if !strings.HasSuffix(got, "[secret T]") || len(got) != 20 || dropped+int64(len(got)) != int64(100+len("[secret T]")) {
		t.Errorf("limited: %q, dropped %d", got, dropped)
	}
}
