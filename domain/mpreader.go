package domain

import "encoding/binary"

// mpReader reads MessagePack values from a byte slice. Every method reports
// false, instead of an error, for a value it does not read; callers then
// leave the value to the library.
type mpReader struct {
	b []byte
	i int
	// maxEntries, when above 0, is the most entries an array or a map may
	// hold for skip to step over it.
	maxEntries int
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
			return r.entries(n) && r.skipValues(n, depth)
		}
	case c == 0xdd:
		if n, ok = r.length(4); ok {
			return r.entries(n) && r.skipValues(n, depth)
		}
	case c == 0xde:
		if n, ok = r.length(2); ok {
			return r.entries(n) && r.skipValues(2*n, depth)
		}
	case c == 0xdf:
		if n, ok = r.length(4); ok {
			return r.entries(n) && r.skipValues(2*n, depth)
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

// entries reports whether an array or a map of n entries is within
// maxEntries (a fixed one, of at most 15, always is).
func (r *mpReader) entries(n int) bool {
	return r.maxEntries <= 0 || n <= r.maxEntries
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
