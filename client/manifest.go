package client

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

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
	var body bytes.Buffer
	enc := msgpack.NewEncoder(&body)
	for i := range entries {
		if err := EncodeManifestEntry(enc, &entries[i]); err != nil {
			return err
		}
	}
	return EncodeManifestPage(buf, position, root, next, len(entries), body.Bytes())
}

// EncodeManifestPage appends to buf a manifest page whose entries are
// encoded already (count of them, each by EncodeManifestEntry, one after
// the other in entries): the service encodes a tree's entries once and
// answers each page with a slice of them.
func EncodeManifestPage(buf *bytes.Buffer, position uint64, root [32]byte, next string, count int, entries []byte) error {
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(buf)
	if err := encodeErr(enc.EncodeMapLen(4),
		enc.EncodeString("position"), enc.EncodeUint(position),
		enc.EncodeString("root"), enc.EncodeBytes(root[:]),
		enc.EncodeString("next_cursor"), enc.EncodeString(next),
		enc.EncodeString("entries"), enc.EncodeArrayLen(count)); err != nil {
		return err
	}
	buf.Write(entries)
	return nil
}

// EncodeManifestEntry encodes one entry of a page.
func EncodeManifestEntry(enc *msgpack.Encoder, e *ManifestEntry) error {
	if err := encodeErr(enc.EncodeArrayLen(manifestEntryFields),
		enc.EncodeString(e.Path), enc.EncodeString(e.Kind), enc.EncodeInt(e.Size),
		enc.EncodeUint(uint64(e.Mode)), enc.EncodeBytes(e.Hash[:]), enc.EncodeString(e.Target)); err != nil {
		return err
	}
	if len(e.Xattrs) == 0 {
		return encodeErr(enc.EncodeNil())
	}
	return encodeErr(enc.Encode(e.Xattrs))
}

func encodeErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("encode manifest: %w", err)
		}
	}
	return nil
}

// DecodeManifest decodes a MessagePack manifest page. Keys it does not
// know and entry fields past the seventh are skipped, so the format can
// grow.
func DecodeManifest(data []byte) (ManifestReply, error) {
	var r ManifestReply
	h, general, err := decodeManifestBody(data, func(b []byte) (used int, ok bool) {
		r.Entries, used, ok = decodeEntriesFast(b)
		return used, ok
	})
	if err != nil {
		return r, err
	}
	if general != nil {
		r.Entries = general
	}
	if r.Entries == nil {
		r.Entries = []EntryView{}
	}
	r.Position, r.NextCursor = h.position, h.next
	if h.root != nil {
		r.Root = hex.EncodeToString(h.root)
	}
	return r, nil
}

// ManifestPage is a page of fs.manifest as DecodeManifestPage gives it:
// the MessagePack reply's entries with their hashes as 32 bytes, for Go
// callers that compare or look up hashes rather than show them. It costs
// about half of a ManifestReply to decode (no hex text per hash).
type ManifestPage struct {
	Entries    []ManifestEntry
	NextCursor string
	Position   uint64
	Root       [32]byte
}

// DecodeManifestPage decodes a MessagePack manifest page into a
// ManifestPage; it reads what DecodeManifest reads.
func DecodeManifestPage(data []byte) (ManifestPage, error) {
	var p ManifestPage
	h, general, err := decodeManifestBody(data, func(b []byte) (used int, ok bool) {
		p.Entries, used, ok = decodeRawEntries(b)
		return used, ok
	})
	if err != nil {
		return p, err
	}
	if general != nil {
		p.Entries = make([]ManifestEntry, len(general))
		for i, v := range general {
			e := ManifestEntry{Path: v.Path, Kind: v.Kind, Size: v.Size, Mode: v.Mode, Target: v.Target, Xattrs: v.Xattrs}
			if _, err := hex.Decode(e.Hash[:], []byte(v.Hash)); err != nil {
				return p, fmt.Errorf("decode manifest entry %s: %w", v.Path, err)
			}
			p.Entries[i] = e
		}
	}
	if p.Entries == nil {
		p.Entries = []ManifestEntry{}
	}
	p.Position, p.NextCursor = h.position, h.next
	if h.root != nil && copy(p.Root[:], h.root) != len(p.Root) {
		return p, fmt.Errorf("decode manifest root: %d bytes, want %d", len(h.root), len(p.Root))
	}
	return p, nil
}

// manifestHeader is what a page holds besides its entries.
type manifestHeader struct {
	position uint64
	root     []byte
	next     string
}

// decodeManifestBody walks a MessagePack manifest page. fast decodes the
// entries' array at the start of the bytes it is given and says how many
// it used; when it cannot (!ok), the general decoder reads them instead
// and returns them as general.
func decodeManifestBody(data []byte, fast func([]byte) (used int, ok bool)) (h manifestHeader, general []EntryView, err error) {
	rd := bytes.NewReader(data)
	dec := msgpack.NewDecoder(rd) // reads rd byte by byte: no read-ahead
	n, err := dec.DecodeMapLen()
	if err != nil {
		return h, nil, fmt.Errorf("decode manifest: %w", err)
	}
	for range n {
		key, err := dec.DecodeString()
		if err != nil {
			return h, nil, fmt.Errorf("decode manifest: %w", err)
		}
		switch key {
		case "position":
			h.position, err = dec.DecodeUint64()
		case "root":
			h.root, err = dec.DecodeBytes()
		case "next_cursor":
			h.next, err = dec.DecodeString()
		case "entries":
			off := len(data) - rd.Len()
			if used, ok := fast(data[off:]); ok {
				_, err = rd.Seek(int64(off+used), io.SeekStart)
				break
			}
			general, err = decodeManifestEntries(dec, len(data))
			if general == nil && err == nil {
				general = []EntryView{}
			}
		default:
			err = dec.Skip()
		}
		if err != nil {
			return h, nil, fmt.Errorf("decode manifest %s: %w", key, err)
		}
	}
	return h, general, nil
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

// decodeEntriesFast decodes the entries of a page as the service encodes
// them, reading the bytes directly: 7-field entries of strings, integers,
// a 32-byte hash and nil or a map of xattrs. It reports !ok, having
// decoded nothing the caller keeps, for anything else (a field more, a
// malformed body), which the general decoder then reads or refuses. The
// general decoder costs about a microsecond per entry, through an
// io.Reader call per value; this one a fraction of that, the difference
// between a 101,000-entry listing decoding in tens of milliseconds or a
// few (docs/benchmarks.md, row 4).
func decodeEntriesFast(b []byte) (out []EntryView, used int, ok bool) {
	r := mpBytes{b: b}
	n, ok := r.arrayLen()
	if !ok || n > len(b) {
		return nil, 0, false
	}
	out = make([]EntryView, n)
	text := newPageText(len(b) - entryMinBytes*n + 64*n)
	var hexHash [64]byte
	var f entryFields
	for i := range out {
		if !r.entry(&f) {
			return nil, 0, false
		}
		hex.Encode(hexHash[:], f.hash)
		out[i] = EntryView{Path: text.add(f.path), Kind: kindString(f.kind), Size: f.size, Mode: f.mode,
			Hash: text.add(hexHash[:]), Target: text.add(f.target), Xattrs: f.xattrs}
	}
	return out, r.i, true
}

// decodeRawEntries decodes the entries of a page as decodeEntriesFast
// does, into ManifestEntry values: hashes stay 32 bytes, so a page costs
// no hex encoding and only its paths and targets as text.
func decodeRawEntries(b []byte) (out []ManifestEntry, used int, ok bool) {
	r := mpBytes{b: b}
	n, ok := r.arrayLen()
	if !ok || n > len(b) {
		return nil, 0, false
	}
	out = make([]ManifestEntry, n)
	text := newPageText(len(b) - entryMinBytes*n)
	var f entryFields
	for i := range out {
		if !r.entry(&f) {
			return nil, 0, false
		}
		e := &out[i]
		e.Path, e.Kind, e.Size, e.Mode = text.add(f.path), kindString(f.kind), f.size, f.mode
		copy(e.Hash[:], f.hash)
		e.Target, e.Xattrs = text.add(f.target), f.xattrs
	}
	return out, r.i, true
}

// entryMinBytes is the least an entry takes of a page that is not its
// path's or target's bytes: its array's header, a code each for path,
// kind, size, mode, target and xattrs, and the hash as bin8 of 32 bytes.
// A page's text (its paths and targets) is at most its size less that
// much per entry: the text's buffer is sized so (less than half of the
// page for a listing of short paths), not as large as the page.
const entryMinBytes = 1 + 6 + 2 + 32

// pageText holds the strings of a decoded page (paths, hashes as hex,
// targets) in one buffer sized for all of them, each string a slice of
// it: a builder only appends, so what a string names never changes, a
// page of 10,000 entries allocates once instead of 30,000 times (the
// garbage collector was the largest cost left), and nothing is copied
// twice. A caller that keeps one path of a page keeps the page's text
// alive.
type pageText struct{ b strings.Builder }

func newPageText(size int) *pageText {
	t := &pageText{}
	t.b.Grow(max(size, 0))
	return t
}

func (t *pageText) add(s []byte) string {
	if len(s) == 0 {
		return ""
	}
	from := t.b.Len()
	t.b.Write(s)
	return t.b.String()[from:]
}

// entryFields are the fields of an entry as they are in the body.
type entryFields struct {
	path, kind, hash, target []byte
	size                     int64
	mode                     uint32
	xattrs                   map[string][]byte
}

// entry reads one entry, an array of exactly manifestEntryFields, into f
// (each field overwritten: callers reuse one). Entries as the service
// writes them are read by entryFast; anything else it leaves to
// entrySlow, which reads every encoding of each field.
func (r *mpBytes) entry(f *entryFields) bool {
	if r.entryFast(f) {
		return true
	}
	return r.entrySlow(f)
}

// entryFast reads an entry in the encodings the service writes: names as
// fixstr or str8, size and mode as unsigned integers of up to 32 bits,
// the hash as bin8 of 32 bytes, and no xattrs. It reads the bytes in one
// pass with no call per value (a third less CPU than entrySlow's, which
// calls a method per value and three per string) and, when the entry is
// anything else, reports false having moved nothing.
func (r *mpBytes) entryFast(f *entryFields) bool {
	b, i := r.b, r.i
	if i >= len(b) || b[i] != msgpcode.FixedArrayLow|manifestEntryFields {
		return false
	}
	path, i := textAt(b, i+1)
	kind, i := textAt(b, i)
	size, i := uintAt(b, i)
	mode, i := uintAt(b, i)
	if i < 0 || i+2+32 >= len(b) || b[i] != msgpcode.Bin8 || b[i+1] != 32 {
		return false
	}
	hash := b[i+2 : i+2+32]
	target, i := textAt(b, i+2+32)
	if i < 0 || i >= len(b) || b[i] != msgpcode.Nil {
		return false
	}
	f.path, f.kind, f.size, f.mode, f.hash, f.target, f.xattrs = path, kind, int64(size), uint32(mode), hash, target, nil
	r.i = i + 1
	return true
}

// textAt reads a fixstr or str8 at b[i] (nothing where i < 0: a read
// before it failed). It returns the string's bytes and where the next
// value starts, -1 for anything else.
func textAt(b []byte, i int) ([]byte, int) {
	if i < 0 || i >= len(b) {
		return nil, -1
	}
	n, from := 0, i+1
	switch c := b[i]; {
	case c&0xe0 == msgpcode.FixedStrLow:
		n = int(c & msgpcode.FixedStrMask)
	case c == msgpcode.Str8 && from < len(b):
		n, from = int(b[from]), from+1
	default:
		return nil, -1
	}
	if n > len(b)-from {
		return nil, -1
	}
	return b[from : from+n], from + n
}

// uintAt reads an unsigned integer of up to 32 bits at b[i] as textAt
// reads a string.
func uintAt(b []byte, i int) (uint32, int) {
	if i < 0 || i >= len(b) {
		return 0, -1
	}
	switch c := b[i]; {
	case c <= msgpcode.PosFixedNumHigh:
		return uint32(c), i + 1
	case c == msgpcode.Uint8 && len(b)-i > 1:
		return uint32(b[i+1]), i + 2
	case c == msgpcode.Uint16 && len(b)-i > 2:
		return uint32(binary.BigEndian.Uint16(b[i+1:])), i + 3
	case c == msgpcode.Uint32 && len(b)-i > 4:
		return binary.BigEndian.Uint32(b[i+1:]), i + 5
	}
	return 0, -1
}

// entrySlow reads an entry in any encoding of its fields.
func (r *mpBytes) entrySlow(f *entryFields) bool {
	if fields, ok := r.arrayLen(); !ok || fields != manifestEntryFields {
		return false
	}
	var ok bool
	if f.path, ok = r.str(); !ok {
		return false
	}
	if f.kind, ok = r.str(); !ok {
		return false
	}
	if f.size, ok = r.int(); !ok {
		return false
	}
	mode, ok := r.int()
	if !ok || mode < 0 || mode > 1<<32-1 {
		return false
	}
	f.mode = uint32(mode)
	if f.hash, ok = r.str(); !ok || len(f.hash) != 32 {
		return false
	}
	if f.target, ok = r.str(); !ok {
		return false
	}
	f.xattrs, ok = r.xattrs()
	return ok
}

// kindString returns the kinds the service sends as constants, so a page
// of 10,000 entries does not allocate 10,000 copies of "file".
func kindString(b []byte) string {
	switch string(b) {
	case "file":
		return "file"
	case "dir":
		return "dir"
	case "symlink":
		return "symlink"
	}
	return string(b)
}

// mpBytes reads the few MessagePack types of a manifest entry from a
// byte slice; every read reports !ok at the end of the bytes or at a type
// it does not expect.
type mpBytes struct {
	b []byte
	i int
}

func (r *mpBytes) next(n int) ([]byte, bool) {
	if n < 0 || len(r.b)-r.i < n {
		return nil, false
	}
	r.i += n
	return r.b[r.i-n : r.i], true
}

func (r *mpBytes) code() (byte, bool) {
	c, ok := r.next(1)
	if !ok {
		return 0, false
	}
	return c[0], true
}

// length reads a big-endian length of 1, 2 or 4 bytes.
func (r *mpBytes) length(size int) (int, bool) {
	b, ok := r.next(size)
	if !ok {
		return 0, false
	}
	switch size {
	case 1:
		return int(b[0]), true
	case 2:
		return int(binary.BigEndian.Uint16(b)), true
	}
	return int(binary.BigEndian.Uint32(b)), true
}

func (r *mpBytes) arrayLen() (int, bool) {
	c, ok := r.code()
	switch {
	case !ok:
		return 0, false
	case c >= msgpcode.FixedArrayLow && c <= msgpcode.FixedArrayHigh:
		return int(c & msgpcode.FixedArrayMask), true
	case c == msgpcode.Array16:
		return r.length(2)
	case c == msgpcode.Array32:
		return r.length(4)
	}
	return 0, false
}

// str reads a string or binary value (nil reads as empty); the bytes are
// the body's.
func (r *mpBytes) str() ([]byte, bool) {
	c, ok := r.code()
	n := 0
	switch {
	case !ok:
		return nil, false
	case c >= msgpcode.FixedStrLow && c <= msgpcode.FixedStrHigh:
		n = int(c & msgpcode.FixedStrMask)
	case c == msgpcode.Nil:
		return nil, true
	case c == msgpcode.Str8 || c == msgpcode.Bin8:
		n, ok = r.length(1)
	case c == msgpcode.Str16 || c == msgpcode.Bin16:
		n, ok = r.length(2)
	case c == msgpcode.Str32 || c == msgpcode.Bin32:
		n, ok = r.length(4)
	default:
		return nil, false
	}
	if !ok {
		return nil, false
	}
	return r.next(n)
}

// int reads an integer of any width that fits an int64.
func (r *mpBytes) int() (int64, bool) {
	c, ok := r.code()
	if !ok {
		return 0, false
	}
	if msgpcode.IsFixedNum(c) {
		return int64(int8(c)), true
	}
	var size int
	switch c {
	case msgpcode.Uint8, msgpcode.Int8:
		size = 1
	case msgpcode.Uint16, msgpcode.Int16:
		size = 2
	case msgpcode.Uint32, msgpcode.Int32:
		size = 4
	case msgpcode.Uint64, msgpcode.Int64:
		size = 8
	default:
		return 0, false
	}
	b, ok := r.next(size)
	if !ok {
		return 0, false
	}
	var u uint64
	for _, x := range b {
		u = u<<8 | uint64(x)
	}
	switch c {
	case msgpcode.Int8:
		return int64(int8(u)), true
	case msgpcode.Int16:
		return int64(int16(u)), true
	case msgpcode.Int32:
		return int64(int32(u)), true
	case msgpcode.Uint64:
		if u > 1<<63-1 {
			return 0, false
		}
	}
	return int64(u), true
}

// xattrs reads nil or a map of names to values.
func (r *mpBytes) xattrs() (map[string][]byte, bool) {
	c, ok := r.code()
	n := 0
	switch {
	case !ok:
		return nil, false
	case c == msgpcode.Nil:
		return nil, true
	case c >= msgpcode.FixedMapLow && c <= msgpcode.FixedMapHigh:
		n = int(c & msgpcode.FixedMapMask)
	case c == msgpcode.Map16:
		n, ok = r.length(2)
	case c == msgpcode.Map32:
		n, ok = r.length(4)
	default:
		return nil, false
	}
	if !ok || n > len(r.b)-r.i {
		return nil, false
	}
	m := make(map[string][]byte, n)
	for range n {
		k, ok := r.str()
		if !ok {
			return nil, false
		}
		v, ok := r.str()
		if !ok {
			return nil, false
		}
		m[string(k)] = bytes.Clone(v)
	}
	return m, true
}
