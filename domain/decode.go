package domain

import (
	"bytes"
	"encoding/binary"
	"errors"

	"github.com/vmihailenco/msgpack/v5"
)

// Decoding an envelope is on the path of every replay, load and audit, a
// million times in a large one. The reflective decoder of the MessagePack
// library costs ~1.5 µs and 18 allocations per event; this one reads the
// envelope's common shape straight from the bytes in four allocations (the
// event, one string and one byte arena for its scalars, the operations;
// ~0.5 µs) and hands anything else to the library:
//
//   - a payload other than the scalars and the operations (created, note,
//     approval, ...) is cut out as raw bytes and decoded by the library into
//     its field, exactly as it would have been in place;
//   - a value of an unusual shape (a string sent as bin, an empty array, an
//     operation with an unexpected key type, ...) is too;
//   - anything that would make the two differ (not a map at the top, a key
//     that is not a string, a repeated key, a value that does not parse) sends
//     the whole body to the library, once its structure is checked.
//
// The result is the library's, field for field: FuzzDecodeEvent checks it.

// decodeEventLibrary is the library's decoding of an envelope, given only
// a body that is one well-formed MessagePack value: version 5.4.1 of the
// library sizes a slice by the length its header claims, so ten bytes that
// claim an array of four billion operations would take all memory.
// A checked length is at most the bytes left.
func decodeEventLibrary(b []byte) (*Event, error) {
	r := mpReader{b: b}
	if !r.skip(0) {
		return nil, errMalformed
	}
	var e Event
	if err := msgpack.NewDecoder(bytes.NewReader(b)).Decode(&e); err != nil {
		return nil, err
	}
	return &e, nil
}

// DecodeMsgpack decodes one MessagePack value into v with the library, once
// its structure is checked as for an event (every length within the bytes
// left, nesting at most 64 deep): for everything read back from a stream
// (chunk indexes, snapshots, tree blobs), which a damaged or tampered store
// may hold. Bytes after the value are ignored, as the library does.
func DecodeMsgpack(b []byte, v any) error {
	r := mpReader{b: b}
	if !r.skip(0) {
		return errMalformed
	}
	return msgpack.Unmarshal(b, v)
}

var errMalformed = errors.New("not a well-formed MessagePack value (truncated, a length beyond the end, an unused code, or nested deeper than 64)")

var eventTypeNames = func() map[string]EventType {
	m := make(map[string]EventType, len(EventTypes))
	for _, t := range EventTypes {
		m[string(t)] = t
	}
	return m
}()

var opKinds = map[string]string{
	OpWrite: OpWrite, OpMkdir: OpMkdir, OpRemove: OpRemove, OpRename: OpRename,
	OpSymlink: OpSymlink, OpSetXattr: OpSetXattr, OpRemoveXattr: OpRemoveXattr,
}

// decodeEventFast decodes an envelope into e, which must be zero; ok is
// false when the library must (e may then hold part of the envelope).
func decodeEventFast(b []byte, e *Event) (ok bool) {
	r := mpReader{b: b}
	n, ok := r.mapLen()
	if !ok {
		return false
	}
	d := eventDecoder{r: r, s: string(b), e: e}
	var seen uint64
	for range n {
		key, ok := d.r.str()
		if !ok {
			return false
		}
		field, bit := envelopeField(d.e, key)
		if bit != 0 {
			if seen&bit != 0 {
				return false
			}
			seen |= bit
		}
		start := d.r.i
		if field == nil { // an unknown key: skipped, as the library does
			if !d.r.skip(1) {
				return false
			}
			continue
		}
		if d.scalar(field) {
			continue
		}
		d.r.i = start
		if !d.r.skip(1) || msgpack.Unmarshal(b[start:d.r.i], field) != nil {
			return false
		}
	}
	return true
}

// envelopeField returns a pointer to the field of e that key names, and a bit
// of its own (nil and 0 for a key the envelope does not have).
func envelopeField(e *Event, key []byte) (any, uint64) {
	switch string(key) {
	case "id":
		return &e.ID, 1 << 0
	case "type":
		return &e.Type, 1 << 1
	case "tenant":
		return &e.Tenant, 1 << 2
	case "session":
		return &e.Session, 1 << 3
	case "actor":
		return &e.Actor, 1 << 4
	case "time":
		return &e.Time, 1 << 5
	case "rid":
		return &e.RequestID, 1 << 6
	case "n":
		return &e.Version, 1 << 7
	case "prev":
		return &e.Prev, 1 << 8
	case "root":
		return &e.Root, 1 << 9
	case "ops":
		return &e.Ops, 1 << 10
	case "created":
		return &e.Created, 1 << 11
	case "tags":
		return &e.Tags, 1 << 12
	case "untag":
		return &e.Untag, 1 << 13
	case "cp":
		return &e.Checkpoint, 1 << 14
	case "restore":
		return &e.Restore, 1 << 15
	case "note":
		return &e.Note, 1 << 16
	case "approval":
		return &e.Approval, 1 << 17
	case "commit":
		return &e.Commit, 1 << 18
	case "policy":
		return &e.Policy, 1 << 19
	case "merge":
		return &e.Merge, 1 << 20
	case "uses":
		return &e.Uses, 1 << 21
	case "cache":
		return &e.Cache, 1 << 22
	case "lock":
		return &e.Lock, 1 << 23
	case "health":
		return &e.Health, 1 << 24
	}
	return nil, 0
}

// eventDecoder reads one envelope. Strings are cut from s, one copy of the
// whole body (a holder of one small field for long should clone it); byte
// fields from arena, a buffer renewed when full.
type eventDecoder struct {
	r     mpReader
	s     string
	e     *Event
	arena []byte
}

// scalar decodes the value at the reader into field when it has the common
// shape, and reports whether it did; it changes nothing when it did not.
func (d *eventDecoder) scalar(field any) bool {
	switch f := field.(type) {
	case *string:
		v, ok := d.string()
		if ok {
			*f = v
		}
		return ok
	case *EventType:
		start := d.r.i
		raw, ok := d.r.str()
		if !ok {
			return false
		}
		if t, known := eventTypeNames[string(raw)]; known {
			*f = t
		} else {
			d.r.i = start
			v, _ := d.string()
			*f = EventType(v)
		}
		return true
	case *int64:
		v, ok := d.r.num()
		if ok {
			*f = int64(v)
		}
		return ok
	case *uint64:
		v, ok := d.r.num()
		if ok {
			*f = v
		}
		return ok
	case *[]byte:
		v, ok := d.bytes()
		if ok {
			*f = v
		}
		return ok
	case *[]Op:
		v, ok := d.ops()
		if ok {
			*f = v
		}
		return ok
	}
	return false
}

// string reads a str value (nil: "") as a substring of the body's copy.
func (d *eventDecoder) string() (string, bool) {
	raw, ok := d.r.str()
	if !ok || raw == nil {
		return "", ok
	}
	end := d.r.i
	return d.s[end-len(raw) : end], true
}

// bytes reads a bin value of at least one byte, or nil.
func (d *eventDecoder) bytes() ([]byte, bool) {
	c, ok := d.r.peek()
	if ok && c == 0xc0 {
		d.r.i++
		return nil, true
	}
	raw, ok := d.r.bin()
	if !ok || len(raw) == 0 {
		return nil, false // an empty bin is the library's to decode
	}
	if cap(d.arena)-len(d.arena) < len(raw) {
		// Slices already cut keep the old arena alive; a new one is sized
		// for what an envelope usually holds (prev, root, a content hash).
		d.arena = make([]byte, 0, max(len(raw), 128))
	}
	start := len(d.arena)
	d.arena = append(d.arena, raw...)
	return d.arena[start:len(d.arena):len(d.arena)], true
}

// ops reads a non-empty array of operations, or nil.
func (d *eventDecoder) ops() ([]Op, bool) {
	c, ok := d.r.peek()
	if ok && c == 0xc0 {
		d.r.i++
		return nil, true
	}
	n, ok := d.r.arrayLen()
	if !ok || n == 0 || n > len(d.r.b)-d.r.i {
		return nil, false
	}
	ops := make([]Op, n)
	for i := range ops {
		if !d.op(&ops[i]) {
			return nil, false
		}
	}
	return ops, true
}

func (d *eventDecoder) op(op *Op) bool {
	n, ok := d.r.mapLen()
	if !ok {
		return false
	}
	var seen uint16
	for range n {
		key, ok := d.r.str()
		if !ok {
			return false
		}
		var bit uint16
		switch string(key) {
		case "k":
			bit = 1 << 0
			start := d.r.i
			raw, ok := d.r.str()
			if !ok {
				return false
			}
			if k, known := opKinds[string(raw)]; known {
				op.Kind = k
			} else {
				d.r.i = start
				op.Kind, _ = d.string()
			}
		case "p":
			bit = 1 << 1
			op.Path, ok = d.string()
		case "to":
			bit = 1 << 2
			op.To, ok = d.string()
		case "t":
			bit = 1 << 3
			op.Target, ok = d.string()
		case "h":
			bit = 1 << 4
			op.Content, ok = d.bytes()
		case "s":
			bit = 1 << 5
			var v uint64
			v, ok = d.r.num()
			op.Size = int64(v)
		case "m":
			bit = 1 << 6
			var v uint64
			v, ok = d.r.num()
			op.Mode = uint32(v)
		case "r":
			bit = 1 << 7
			op.Recursive, ok = d.r.bool()
		case "n":
			bit = 1 << 8
			op.Name, ok = d.string()
		case "v":
			bit = 1 << 9
			op.Value, ok = d.bytes()
		default:
			ok = d.r.skip(3)
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
	return true
}

// mpReader reads MessagePack values from a byte slice. Every method reports
// false, instead of an error, for a value it does not read; callers then
// leave the value to the library.
type mpReader struct {
	b []byte
	i int
}

func (r *mpReader) peek() (byte, bool) {
	if r.i >= len(r.b) {
		return 0, false
	}
	return r.b[r.i], true
}

func (r *mpReader) next(n int) ([]byte, bool) {
	if n < 0 || n > len(r.b)-r.i {
		return nil, false
	}
	v := r.b[r.i : r.i+n]
	r.i += n
	return v, true
}

// length reads a 1-, 2- or 4-byte big-endian length.
func (r *mpReader) length(size int) (int, bool) {
	v, ok := r.next(size)
	if !ok {
		return 0, false
	}
	switch size {
	case 1:
		return int(v[0]), true
	case 2:
		return int(binary.BigEndian.Uint16(v)), true
	default:
		return int(binary.BigEndian.Uint32(v)), true
	}
}

func (r *mpReader) mapLen() (int, bool) {
	c, ok := r.peek()
	switch {
	case !ok:
		return 0, false
	case c >= 0x80 && c <= 0x8f:
		r.i++
		return int(c & 0x0f), true
	case c == 0xde:
		r.i++
		return r.length(2)
	case c == 0xdf:
		r.i++
		return r.length(4)
	}
	return 0, false
}

func (r *mpReader) arrayLen() (int, bool) {
	c, ok := r.peek()
	switch {
	case !ok:
		return 0, false
	case c >= 0x90 && c <= 0x9f:
		r.i++
		return int(c & 0x0f), true
	case c == 0xdc:
		r.i++
		return r.length(2)
	case c == 0xdd:
		r.i++
		return r.length(4)
	}
	return 0, false
}

// str reads a str value; nil reads as a nil slice.
func (r *mpReader) str() ([]byte, bool) {
	c, ok := r.peek()
	if !ok {
		return nil, false
	}
	n := 0
	switch {
	case c == 0xc0:
		r.i++
		return nil, true
	case c >= 0xa0 && c <= 0xbf:
		r.i++
		n = int(c & 0x1f)
	case c >= 0xd9 && c <= 0xdb:
		r.i++
		if n, ok = r.length(1 << (c - 0xd9)); !ok {
			return nil, false
		}
	default:
		return nil, false
	}
	v, ok := r.next(n)
	if ok && v == nil {
		v = []byte{}
	}
	return v, ok
}

// bin reads a bin value.
func (r *mpReader) bin() ([]byte, bool) {
	c, ok := r.peek()
	if !ok || c < 0xc4 || c > 0xc6 {
		return nil, false
	}
	r.i++
	n, ok := r.length(1 << (c - 0xc4))
	if !ok {
		return nil, false
	}
	return r.next(n)
}

// num reads an integer (or nil, as 0) as the library does for an int64 or
// uint64 field: the bits of its two's complement value.
func (r *mpReader) num() (uint64, bool) {
	c, ok := r.peek()
	if !ok {
		return 0, false
	}
	r.i++
	switch {
	case c <= 0x7f || c >= 0xe0:
		return uint64(int8(c)), true
	case c == 0xc0:
		return 0, true
	}
	size := 0
	switch c {
	case 0xcc, 0xd0:
		size = 1
	case 0xcd, 0xd1:
		size = 2
	case 0xce, 0xd2:
		size = 4
	case 0xcf, 0xd3:
		size = 8
	default:
		return 0, false
	}
	v, ok := r.next(size)
	if !ok {
		return 0, false
	}
	signed := c >= 0xd0
	switch size {
	case 1:
		if signed {
			return uint64(int8(v[0])), true
		}
		return uint64(v[0]), true
	case 2:
		if signed {
			return uint64(int16(binary.BigEndian.Uint16(v))), true
		}
		return uint64(binary.BigEndian.Uint16(v)), true
	case 4:
		if signed {
			return uint64(int32(binary.BigEndian.Uint32(v))), true
		}
		return uint64(binary.BigEndian.Uint32(v)), true
	}
	return binary.BigEndian.Uint64(v), true
}

func (r *mpReader) bool() (bool, bool) {
	c, ok := r.peek()
	if !ok {
		return false, false
	}
	switch c {
	case 0xc0, 0xc2:
		r.i++
		return false, true
	case 0xc3:
		r.i++
		return true, true
	}
	return false, false
}

// maxSkipDepth bounds how deeply nested a value skip follows.
const maxSkipDepth = 64

// skip steps over one value of any type.
func (r *mpReader) skip(depth int) bool {
	if depth > maxSkipDepth {
		return false
	}
	c, ok := r.peek()
	if !ok {
		return false
	}
	r.i++
	var n int
	switch {
	case c <= 0x7f || c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		return true
	case c <= 0x8f:
		return r.skipValues(2*int(c&0x0f), depth)
	case c <= 0x9f:
		return r.skipValues(int(c&0x0f), depth)
	case c <= 0xbf:
		_, ok = r.next(int(c & 0x1f))
		return ok
	case c == 0xc4 || c == 0xd9: // bin8, str8
		n, ok = r.length(1)
	case c == 0xc5 || c == 0xda:
		n, ok = r.length(2)
	case c == 0xc6 || c == 0xdb:
		n, ok = r.length(4)
	case c == 0xc7: // ext8: length, type, data
		n, ok = r.length(1)
		n++
	case c == 0xc8:
		n, ok = r.length(2)
		n++
	case c == 0xc9:
		n, ok = r.length(4)
		n++
	case c == 0xca || c == 0xce || c == 0xd2: // float32, uint32, int32
		n, ok = 4, true
	case c == 0xcb || c == 0xcf || c == 0xd3:
		n, ok = 8, true
	case c == 0xcc || c == 0xd0:
		n, ok = 1, true
	case c == 0xcd || c == 0xd1:
		n, ok = 2, true
	case c >= 0xd4 && c <= 0xd8: // fixext 1, 2, 4, 8, 16 and their type
		n, ok = 1+(1<<(c-0xd4)), true
	case c == 0xdc:
		if n, ok = r.length(2); ok {
			return r.skipValues(n, depth)
		}
	case c == 0xdd:
		if n, ok = r.length(4); ok {
			return r.skipValues(n, depth)
		}
	case c == 0xde:
		if n, ok = r.length(2); ok {
			return r.skipValues(2*n, depth)
		}
	case c == 0xdf:
		if n, ok = r.length(4); ok {
			return r.skipValues(2*n, depth)
		}
	default: // 0xc1, never used
		return false
	}
	if !ok {
		return false
	}
	_, ok = r.next(n)
	return ok
}

func (r *mpReader) skipValues(n, depth int) bool {
	if n > len(r.b)-r.i {
		return false
	}
	for range n {
		if !r.skip(depth + 1) {
			return false
		}
	}
	return true
}
