package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/strand-dev/strand/client"
)

// BenchmarkDecodeBatch decodes row 9's request (one fs.batch of 1,000
// files of 200 bytes) as the service does, in JSON and in MessagePack, and
// encodes it as the Go client does: the request encodings' own CPU cost,
// single-threaded, steadier than the whole round trip on a loaded machine.
func BenchmarkDecodeBatch(b *testing.B) {
	req := client.BatchRequest{Session: "01M8639GP38ZZVG1GPASRX3QZR", Ops: make([]client.BatchOp, 1000)}
	for i := range req.Ops {
		c := bytes.Repeat([]byte("func f() { return 42 } // some source text\n"), 5)[:200]
		copy(c, fmt.Sprint(i))
		req.Ops[i] = client.BatchOp{Op: "write", Path: fmt.Sprintf("d%02d/f%04d.go", i%10, i), Content: c}
	}
	jsonBody, err := json.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	mpBody, err := client.EncodeMsgpackRequest(req)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode-json", func(b *testing.B) {
		b.SetBytes(int64(len(jsonBody)))
		for b.Loop() {
			var r client.BatchRequest
			dec := json.NewDecoder(bytes.NewReader(jsonBody))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-msgpack", func(b *testing.B) {
		b.SetBytes(int64(len(mpBody)))
		for b.Loop() {
			var r client.BatchRequest
			if err := decodeMsgpack(mpBody, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode-msgpack", func(b *testing.B) {
		for b.Loop() {
			if _, err := client.EncodeMsgpackRequest(req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
