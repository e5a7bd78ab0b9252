package client

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/strand-dev/strand/domain"
)

// MaxReadBatchPaths bounds the paths of one fs.read_batch.
const MaxReadBatchPaths = 1000

// maxReplyEntries bounds every array and map of a MessagePack reply the
// client decodes with the library: far above what a reply holds
// (MaxReadBatchPaths files).
const maxReplyEntries = 1 << 16

// ReadBatchRequest is the body of fs.read_batch: many paths of one session
// at one point, read in one request.
type ReadBatchRequest struct {
	Session string   `json:"session"`
	At      At       `json:"at,omitempty"`
	Paths   []string `json:"paths"`
	// MaxBytes bounds the content of the reply (0: as much as one reply
	// holds).
	MaxBytes int64 `json:"max_bytes,omitempty"`
	// Encoding is the reply's: ManifestJSON (the default) or
	// ManifestMsgpack (the same keys, content as raw bytes; see
	// DecodeReadBatch).
	Encoding string `json:"encoding,omitempty"`
}

// ReadBatchFile is one path of an fs.read_batch reply. Content is sent once
// per hash in a reply: a later file with a hash sent before has no content.
// More is true when the content is not in this reply (the reply was full,
// or the file alone is larger than a reply): read it with fs.read, or ask
// again. Error is set, and nothing else but Path, for a path that cannot
// be read (not_found, invalid_argument).
type ReadBatchFile struct {
	Path    string       `json:"path"`
	Kind    string       `json:"kind,omitempty"`
	Size    int64        `json:"size,omitempty"`
	Mode    uint32       `json:"mode,omitempty"`
	Hash    string       `json:"hash,omitempty"`
	Target  string       `json:"target,omitempty"`
	Content []byte       `json:"content,omitempty"`
	More    bool         `json:"more,omitempty"`
	Error   *ErrorDetail `json:"error,omitempty"`
}

// ReadBatchReply answers fs.read_batch: the files in the order asked, at
// one position.
type ReadBatchReply struct {
	Files    []ReadBatchFile `json:"files"`
	Position uint64          `json:"position"`
}

// ReadBatchContentType is the Content-Type header of a MessagePack
// fs.read_batch reply.
const ReadBatchContentType = ManifestContentType

// EncodeReadBatch returns the MessagePack form of an fs.read_batch reply:
// a map with the JSON reply's keys, each file a map with the JSON file's
// keys (empty fields left out), content as binary instead of base64. JSON
// costs the mount's cold reads more than moving the bytes does: base64
// makes a reply a third larger, and encoding and decoding its strings was
// a third of the mount process's time in a cold read of a 10,000-file tree
// (docs/benchmarks.md, issue 21).
func EncodeReadBatch(r *ReadBatchReply) ([]byte, error) {
	// Sized up front: growing a buffer of megabytes by doubling cleared
	// and copied it over and over (a tenth of the CPU of a mount's cold
	// read, docs/benchmarks.md issue 21).
	size := 64
	for _, f := range r.Files {
		size += 128 + len(f.Path) + len(f.Hash) + len(f.Target) + len(f.Content)
	}
	var buf bytes.Buffer
	buf.Grow(size)
	enc := msgpack.NewEncoder(&buf)
	enc.SetCustomStructTag("json")
	enc.UseCompactInts(true)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encode read_batch: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeReadBatch decodes a MessagePack fs.read_batch reply. Keys it does
// not know are skipped, so the format can grow. The reply is checked whole
// first, as the service checks a request (domain.CheckMsgpack): the
// library makes the slice a header claims before it reads an element.
func DecodeReadBatch(data []byte) (ReadBatchReply, error) {
	var r ReadBatchReply
	if err := domain.CheckMsgpack(data, maxReplyEntries); err != nil {
		return r, fmt.Errorf("decode read_batch: %s", domain.ErrorMessage(err))
	}
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	dec.SetCustomStructTag("json")
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("decode read_batch: %w", err)
	}
	return r, nil
}
