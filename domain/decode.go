package domain

import (
	"bytes"
	"errors"
	"reflect"
	"strings"

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

// CheckMsgpack reports whether b is exactly one well-formed MessagePack
// value (every length within the bytes left, nesting at most 64 deep) whose
// arrays and maps hold at most maxEntries entries each (no bound when 0):
// what an untrusted body must be before the library decodes it, since the
// library sizes a slice by the length its header claims. Ten bytes claiming
// an array of four billion entries took all memory; bytes within the body
// still could, a thousand elements of a large struct for every kilobyte
// of nils, which maxEntries bounds.
func CheckMsgpack(b []byte, maxEntries int) error {
	r := mpReader{b: b, maxEntries: maxEntries}
	if !r.skip(0) {
		if all := (mpReader{b: b}); maxEntries > 0 && all.skip(0) {
			return Errorf(CodeTooLarge, "an array or a map holds more than %d entries", maxEntries)
		}
		return Errorf(CodeInvalidArgument, "%s", errMalformed.Error())
	}
	if r.i != len(b) {
		return Errorf(CodeInvalidArgument, "trailing data after the MessagePack value")
	}
	return nil
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
	OpSymlink: OpSymlink, OpSetXattr: OpSetXattr, OpRemoveXattr: OpRemoveXattr, OpChmod: OpChmod,
}

// decodeEventFast decodes an envelope into e, which must be zero; ok is
// false when the library must (e may then hold part of the envelope). With
// head set the operations are stepped over, checked only as a well-formed
// value.
func decodeEventFast(b []byte, e *Event, head bool) (ok bool) {
	r := mpReader{b: b}
	n, ok := r.mapLen()
	if !ok {
		return false
	}
	d := eventDecoder{r: r, s: string(b), e: e, head: head}
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
		if field == &e.Ops && d.head {
			field = nil
		}
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
// of its own (nil and 0 for a key the envelope does not have). The fields
// every event has are named here; a payload's field is found through
// payloadFields, so a new payload needs nothing in this file.
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
	}
	if i, ok := payloadFields[string(key)]; ok {
		return reflect.ValueOf(e).Elem().Field(i).Addr().Interface(), 1 << i
	}
	return nil, 0
}

// payloadFields maps the MessagePack key of each field of Event after the
// common ones (the payloads: created, note, approval, ...) to the field's
// index, which is also its bit in envelopeField.
var payloadFields = func() map[string]int {
	t := reflect.TypeFor[Event]()
	if t.NumField() > 64 {
		panic("domain: Event has more fields than envelopeField has bits")
	}
	m := map[string]int{}
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("msgpack"), ",")
		if i > 10 && key != "" && key != "-" {
			m[key] = i
		}
	}
	return m
}()

// eventDecoder reads one envelope. Strings are cut from s, one copy of the
// whole body (a holder of one small field for long should clone it); byte
// fields from arena, a buffer renewed when full.
type eventDecoder struct {
	r     mpReader
	s     string
	e     *Event
	arena []byte
	head  bool // operations stepped over (DecodeEventHead)
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
		v, ok := interned(d, eventTypeNames)
		if ok {
			*f = v
		}
		return ok
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

// interned reads a str value as one of table's values when it is one (the
// names of event types and operations: no string of the body kept for
// them), else as a substring of the body's copy.
func interned[T ~string](d *eventDecoder, table map[string]T) (T, bool) {
	start := d.r.i
	raw, ok := d.r.str()
	if !ok {
		return "", false
	}
	if v, known := table[string(raw)]; known {
		return v, true
	}
	d.r.i = start
	v, ok := d.string()
	return T(v), ok
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
			op.Kind, ok = interned(d, opKinds)
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
		case "d":
			bit = 1 << 10
			op.Data, ok = d.bytes()
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
