package client

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"

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
			r.Entries, err = decodeManifestEntries(dec, len(data))
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

// decodeManifestEntries decodes the entries of a page. Their strings
// (paths, hex hashes, targets) are slices of one string per page, so a
// page of 10,000 entries allocates a handful of times instead of 30,000
// (the garbage collector was the largest cost left); a caller that keeps
// one path of a page keeps the page's strings alive.
func decodeManifestEntries(dec *msgpack.Decoder, size int) ([]EntryView, error) {
	n, err := dec.DecodeArrayLen()
	if err != nil || n < 0 {
		return []EntryView{}, err
	}
	if n > size {
		// Every entry takes bytes of the body: a count beyond them is a
		// malformed body, refused before it allocates.
		return nil, fmt.Errorf("%d entries in %d bytes", n, size)
	}
	out := make([]EntryView, n)
	type span struct{ path, hash, target [2]int }
	spans := make([]span, n)
	// The strings take at most the body's bytes plus 32 per hex hash.
	arena := make([]byte, 0, size+32*n)
	text := func() ([2]int, error) {
		l, err := dec.DecodeBytesLen()
		if err != nil || l <= 0 {
			return [2]int{len(arena), len(arena)}, err
		}
		from := len(arena)
		arena = slices.Grow(arena, l)[:from+l]
		return [2]int{from, from + l}, dec.ReadFull(arena[from:])
	}
	var hash [32]byte
	var kind [8]byte
	for i := range out {
		fields, err := dec.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		if fields < manifestEntryFields {
			return nil, fmt.Errorf("entry %d has %d fields, want %d", i, fields, manifestEntryFields)
		}
		e, sp := &out[i], &spans[i]
		if sp.path, err = text(); err != nil {
			return nil, err
		}
		if e.Kind, err = decodeKind(dec, kind[:]); err != nil {
			return nil, err
		}
		if e.Size, err = dec.DecodeInt64(); err != nil {
			return nil, err
		}
		if e.Mode, err = dec.DecodeUint32(); err != nil {
			return nil, err
		}
		if l, err := dec.DecodeBytesLen(); err != nil || l != len(hash) {
			return nil, fmt.Errorf("entry %d: hash of %d bytes (%v), want %d", i, l, err, len(hash))
		}
		if err := dec.ReadFull(hash[:]); err != nil {
			return nil, err
		}
		from := len(arena)
		arena = hex.AppendEncode(arena, hash[:])
		sp.hash = [2]int{from, len(arena)}
		if sp.target, err = text(); err != nil {
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
	all := string(arena)
	for i := range out {
		sp := &spans[i]
		out[i].Path = all[sp.path[0]:sp.path[1]]
		out[i].Hash = all[sp.hash[0]:sp.hash[1]]
		out[i].Target = all[sp.target[0]:sp.target[1]]
	}
	return out, nil
}

// decodeKind returns the kinds the service sends as constants, so a page
// of 10,000 entries does not allocate 10,000 copies of "file".
func decodeKind(dec *msgpack.Decoder, buf []byte) (string, error) {
	l, err := dec.DecodeBytesLen()
	if err != nil {
		return "", err
	}
	if l < 0 || l > len(buf) {
		return "", fmt.Errorf("kind of %d bytes", l)
	}
	if err := dec.ReadFull(buf[:l]); err != nil {
		return "", err
	}
	switch string(buf[:l]) {
	case "file":
		return "file", nil
	case "dir":
		return "dir", nil
	case "symlink":
		return "symlink", nil
	}
	return string(buf[:l]), nil
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
