package domain

import "testing"

// TestDecodeMsgpack_LyingLength: a value whose header claims more elements
// than bytes follow is refused before the library sizes a slice by it.
func TestDecodeMsgpack_LyingLength(t *testing.T) {
	var v struct {
		C [][]byte `msgpack:"c"`
	}
	for _, b := range [][]byte{
		{0x81, 0xa1, 'c', 0xdd, 0xff, 0xff, 0xff, 0xff},       // array32 of 4G
		{0x81, 0xa1, 'c', 0xdc, 0xff, 0xff, 0xc0},             // array16 of 65535, one element
		{0xdf, 0xff, 0xff, 0xff, 0xff},                        // map32 of 4G
		{0x81, 0xa1, 'c', 0x91, 0xc6, 0xff, 0xff, 0xff, 0xff}, // bin32 of 4G
	} {
		if err := DecodeMsgpack(b, &v); err == nil {
			t.Errorf("DecodeMsgpack(%x) = nil, want an error", b)
		}
	}
	if err := DecodeMsgpack([]byte{0x81, 0xa1, 'c', 0x91, 0xc4, 0x01, 'x'}, &v); err != nil || len(v.C) != 1 || string(v.C[0]) != "x" {
		t.Errorf("DecodeMsgpack of a well-formed value: %v, %q", err, v.C)
	}
}
