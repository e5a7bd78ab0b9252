package client_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/strand-dev/strand/client"
)

// TestBatchOp_EncodeMsgpackEveryField guards the hand-written encoder of a
// batch operation: with every field of client.BatchOp set, its encoding
// decodes (by reflection, under the JSON names) to the same operation, so
// a field added to the type and not to the encoder fails here instead of
// being dropped from MessagePack requests.
func TestBatchOp_EncodeMsgpackEveryField(t *testing.T) {
	var op client.BatchOp
	v := reflect.ValueOf(&op).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Uint32, reflect.Uint64, reflect.Uint:
			f.SetUint(uint64(0o640 + i))
		case reflect.Slice:
			switch f.Type().Elem().Kind() {
			case reflect.Uint8:
				f.SetBytes([]byte(v.Type().Field(i).Name))
			case reflect.String:
				f.Set(reflect.ValueOf([]string{"a", v.Type().Field(i).Name}))
			default:
				t.Fatalf("BatchOp.%s: a slice of %s, which this test does not fill: extend it", v.Type().Field(i).Name, f.Type().Elem())
			}
		default:
			t.Fatalf("BatchOp.%s: a %s, which this test does not fill: extend it", v.Type().Field(i).Name, f.Kind())
		}
	}
	b, err := msgpack.Marshal(&op)
	if err != nil {
		t.Fatal(err)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	dec.SetCustomStructTag("json")
	dec.DisallowUnknownFields(true)
	var got client.BatchOp
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode %x: %v", b, err)
	}
	if !reflect.DeepEqual(got, op) {
		t.Fatalf("round trip through EncodeMsgpack:\n got %+v\nwant %+v", got, op)
	}
}
