package client

import (
	"bytes"
	"encoding/hex"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Encodings of an fs.manifest reply (ManifestRequest.Encoding).
//
// JSON is the default and stays the one every other endpoint speaks.
// MessagePack exists because a listing is the largest reply the service
// gives (a 100,000-file tree is 13.5 MiB of JSON) and encoding and decoding
// it as JSON cost 40 times moving its bytes (docs/benchmarks.md, row 4).
// The MessagePack reply is a map with the same keys as the JSON one, except
// that each entry is an array of fixed positions and hashes are 32 raw bytes
// (docs/api.md, fs.manifest). The Go client asks for it.
const (
	ManifestJSON    = "json"
	ManifestMsgpack = "msgpack"
)

// ManifestContentType is the Content-Type header of a MessagePack manifest
// reply.
const ManifestContentType = "application/msgpack"

// ManifestEntry is one entry as the service encodes it: the hash as bytes.
type ManifestEntry struct {
	Path   string
	Kind   string
	Size   int64
	Mode   uint32
	Hash   [32]byte
	Target string
	Xattrs map[string][]byte
}

// manifestEntryFields is the length of an entry's array.
const manifestEntryFields = 7

// EncodeManifest appends the MessagePack form of a manifest page to buf:
// {"position": uint, "root": bin 32, "next_cursor": str, "entries":
// [[path, kind, size, mode, hash (bin 32), target, xattrs (map or nil)],
// ...]}.
func EncodeManifest(buf *bytes.Buffer, position uint64, root [32]byte, next string, entries []ManifestEntry) error {
	enc := msgpack.NewEncoder(buf)
	put := func(errs ...error) error {
		for _, err := range errs {
			if err != nil {
				return fmt.Errorf("encode manifest: %w", err)
			}
		}
		return nil
	}
	if err := put(enc.EncodeMapLen(4),
		enc.EncodeString("position"), enc.EncodeUint(position),
		enc.EncodeString("root"), enc.EncodeBytes(root[:]),
		enc.EncodeString("next_cursor"), enc.EncodeString(next),
		enc.EncodeString("entries"), enc.EncodeArrayLen(len(entries))); err != nil {
		return err
	}
	for i := range entries {
		e := &entries[i]
		if err := put(enc.EncodeArrayLen(manifestEntryFields),
			enc.EncodeString(e.Path), enc.EncodeString(e.Kind), enc.EncodeInt(e.Size),
			enc.EncodeUint(uint64(e.Mode)), enc.EncodeBytes(e.Hash[:]), enc.EncodeString(e.Target)); err != nil {
			return err
		}
		if len(e.Xattrs) == 0 {
			if err := put(enc.EncodeNil()); err != nil {
				return err
			}
			continue
		}
		if err := put(enc.Encode(e.Xattrs)); err != nil {
			return err
		}
	}
	return nil
}

// DecodeManifest decodes a MessagePack manifest page. Keys it does not
// know and entry fields past the seventh are skipped, so the format can
// grow.
func DecodeManifest(data []byte) (ManifestReply, error) {
	var r ManifestReply
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	n, err := dec.DecodeMapLen()
	if err != nil {
		return r, fmt.Errorf("decode manifest: %w", err)
	}
	for range n {
		key, err := dec.DecodeString()
		if err != nil {
			return r, fmt.Errorf("decode manifest: %w", err)
		}
		switch key {
		case "position":
			r.Position, err = dec.DecodeUint64()
		case "root":
			var b []byte
			if b, err = dec.DecodeBytes(); err == nil {
				r.Root = hex.EncodeToString(b)
			}
		case "next_cursor":
			r.NextCursor, err = dec.DecodeString()
		case "entries":
			r.Entries, err = decodeManifestEntries(dec)
		default:
			err = dec.Skip()
		}
		if err != nil {
			return r, fmt.Errorf("decode manifest %s: %w", key, err)
		}
	}
	if r.Entries == nil {
		r.Entries = []EntryView{}
	}
	return r, nil
}

func decodeManifestEntries(dec *msgpack.Decoder) ([]EntryView, error) {
	n, err := dec.DecodeArrayLen()
	if err != nil || n < 0 {
		return []EntryView{}, err
	}
	out := make([]EntryView, n)
	var hash []byte
	for i := range out {
		fields, err := dec.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		if fields < manifestEntryFields {
			return nil, fmt.Errorf("entry %d has %d fields, want %d", i, fields, manifestEntryFields)
		}
		e := &out[i]
		if e.Path, err = dec.DecodeString(); err != nil {
			return nil, err
		}
		if e.Kind, err = decodeKind(dec); err != nil {
			return nil, err
		}
		if e.Size, err = dec.DecodeInt64(); err != nil {
			return nil, err
		}
		if e.Mode, err = dec.DecodeUint32(); err != nil {
			return nil, err
		}
		if hash, err = dec.DecodeBytes(); err != nil {
			return nil, err
		}
		e.Hash = hex.EncodeToString(hash)
		if e.Target, err = dec.DecodeString(); err != nil {
			return nil, err
		}
		if err := decodeXattrs(dec, e); err != nil {
			return nil, err
		}
		for range fields - manifestEntryFields {
			if err := dec.Skip(); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// decodeKind returns the kinds the service sends as constants, so a page
// of 10,000 entries does not allocate 10,000 copies of "file".
func decodeKind(dec *msgpack.Decoder) (string, error) {
	s, err := dec.DecodeString()
	switch s {
	case "file":
		return "file", err
	case "dir":
		return "dir", err
	case "symlink":
		return "symlink", err
	}
	return s, err
}

func decodeXattrs(dec *msgpack.Decoder, e *EntryView) error {
	c, err := dec.PeekCode()
	if err != nil {
		return err
	}
	if c == msgpcode.Nil {
		return dec.DecodeNil()
	}
	return dec.Decode(&e.Xattrs)
}
