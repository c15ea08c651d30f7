package protocol

import (
	"reflect"
	"testing"
)

// FuzzDecodeCoordinatorMessage checks that no input makes the decoder
// panic, that whatever decodes also encodes, and that decode→encode→decode
// gives the same message. The seed corpus is committed under
// testdata/fuzz/FuzzDecodeCoordinatorMessage (one file per valid vector and
// a few invalid ones).
func FuzzDecodeCoordinatorMessage(f *testing.F) {
	for _, c := range validCoordinatorCases {
		if b, err := EncodeCoordinatorMessage(c.msg); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeCoordinatorMessage(data)
		if err != nil {
			if m != nil {
				t.Fatal("message returned with an error")
			}
			return
		}
		enc, err := EncodeCoordinatorMessage(m)
		if err != nil {
			t.Fatalf("decoded %#v but cannot encode it: %v", m, err)
		}
		m2, err := DecodeCoordinatorMessage(enc)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("unstable: %#v then %#v", m, m2)
		}
		enc2, err := EncodeCoordinatorMessage(m2)
		if err != nil || string(enc2) != string(enc) {
			t.Fatalf("encoding unstable: %s then %s", enc, enc2)
		}
	})
}
