package client_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/strand-dev/strand/client"
)

// TestDecodeReadBatch: a reply decodes to what was encoded, and a reply
// whose headers claim more than it holds, or an array of more entries than
// any reply has, is an error, not a slice made to the claim (four billion
// files took all memory).
func TestDecodeReadBatch(t *testing.T) {
	want := client.ReadBatchReply{Position: 7, Files: []client.ReadBatchFile{
		{Path: "a.txt", Kind: "file", Size: 2, Hash: "sha256:ab", Content: []byte("hi")},
		{Path: "l", Kind: "symlink", Target: "a.txt"},
		{Path: "gone", Error: &client.ErrorDetail{Code: "not_found", Message: "no such file"}},
	}}
	b, err := client.EncodeReadBatch(&want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := client.DecodeReadBatch(b)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, %v; want %+v", got, err, want)
	}
	claim := []byte{0x81, 0xa5, 'f', 'i', 'l', 'e', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}
	if _, err := client.DecodeReadBatch(claim); err == nil || !strings.Contains(err.Error(), "well-formed") {
		t.Errorf("a claim of four billion files: %v", err)
	}
	many := append([]byte{0x81, 0xa5, 'f', 'i', 'l', 'e', 's', 0xdd, 0, 1, 0, 1}, bytes.Repeat([]byte{0xc0}, 1<<16+1)...)
	if _, err := client.DecodeReadBatch(many); err == nil || !strings.Contains(err.Error(), "more than 65536 entries") {
		t.Errorf("65,537 files: %v", err)
	}
}
