package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// wireVectors is the shape of testdata/wire_vectors.json, shared with the
// browser client's tests.
type wireVectors struct {
	Valid []struct {
		Name  string          `json:"name"`
		Hex   string          `json:"hex"`
		Value json.RawMessage `json:"value"`
	} `json:"valid"`
	Invalid []struct {
		Name  string `json:"name"`
		Hex   string `json:"hex"`
		Error string `json:"error"`
	} `json:"invalid"`
}

// vectorValue is the JSON form of a decoded message in the vectors.
type vectorValue struct {
	Type       string `json:"type"`
	Version    uint8  `json:"version"`
	SwarmID    string `json:"swarmId"`
	BlockCount int    `json:"blockCount"`
	Have       []int  `json:"have"`
	Block      int    `json:"block"`
	Offset     int    `json:"offset"`
	Length     int    `json:"length"`
	Data       string `json:"data"`
	Reason     uint8  `json:"reason"`
}

func (v vectorValue) message(t *testing.T) WireMessage {
	switch v.Type {
	case "hello":
		bf := NewBitfield(v.BlockCount)
		for _, i := range v.Have {
			bf.Set(i)
		}
		return &WireHello{Version: v.Version, SwarmID: v.SwarmID, BlockCount: v.BlockCount, Bitfield: bf}
	case "have":
		return &WireHave{Block: v.Block}
	case "request":
		return &WireRequest{Block: v.Block, Offset: v.Offset, Length: v.Length}
	case "cancel":
		return &WireCancel{Block: v.Block, Offset: v.Offset, Length: v.Length}
	case "reject":
		return &WireReject{Block: v.Block, Offset: v.Offset, Length: v.Length, Reason: RejectReason(v.Reason)}
	case "piece":
		data, err := hex.DecodeString(v.Data)
		if err != nil {
			t.Fatal(err)
		}
		return &WirePiece{Block: v.Block, Offset: v.Offset, Data: data}
	}
	t.Fatalf("unknown vector type %q", v.Type)
	return nil
}

func loadWireVectors(t *testing.T) wireVectors {
	t.Helper()
	raw, err := os.ReadFile("testdata/wire_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v wireVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWireVectorsBothWays(t *testing.T) {
	vec := loadWireVectors(t)
	seen := map[string]bool{}
	for _, tc := range vec.Valid {
		t.Run(tc.Name, func(t *testing.T) {
			var v vectorValue
			if err := json.Unmarshal(tc.Value, &v); err != nil {
				t.Fatal(err)
			}
			seen[v.Type] = true
			want := v.message(t)
			raw, _ := hex.DecodeString(tc.Hex)
			got, err := DecodeWire(raw)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decode = %#v, want %#v", got, want)
			}
			enc, err := EncodeWire(want)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.Equal(enc, raw) {
				t.Fatalf("encode = %x, want %x", enc, raw)
			}
		})
	}
	for _, typ := range []string{"hello", "have", "request", "piece", "cancel", "reject"} {
		if !seen[typ] {
			t.Errorf("no valid vector for %s", typ)
		}
	}
	for _, tc := range vec.Invalid {
		t.Run("invalid "+tc.Name, func(t *testing.T) {
			raw, _ := hex.DecodeString(tc.Hex)
			m, err := DecodeWire(raw)
			if err == nil {
				t.Fatalf("decoded %#v, want error containing %q", m, tc.Error)
			}
			if !errors.Is(err, ErrMalformedWire) {
				t.Errorf("error %v does not wrap ErrMalformedWire", err)
			}
			if !strings.Contains(err.Error(), tc.Error) {
				t.Fatalf("error %q does not contain %q", err, tc.Error)
			}
		})
	}
}

func TestEncodeWireRefusesWhatDecodeRefuses(t *testing.T) {
	cases := []struct {
		name string
		m    WireMessage
		want string
	}{
		{"nil", nil, "nil message"},
		{"hello without bitfield", &WireHello{Version: WireVersion, SwarmID: "a", BlockCount: 3}, "bitfield is 0 bytes, want 1 for 3 blocks"},
		{"hello wrong version", &WireHello{Version: 7, SwarmID: "a", Bitfield: NewBitfield(0)}, "unsupported version 7"},
		{"hello long id", &WireHello{Version: WireVersion, SwarmID: strings.Repeat("x", 129), Bitfield: NewBitfield(0)}, "swarm id length 129"},
		{"have negative", &WireHave{Block: -1}, "block index -1"},
		{"request empty", &WireRequest{Block: 1}, "length 0"},
		{"piece too big", &WirePiece{Data: make([]byte, MaxPieceData+1)}, "exceeds 16384"},
		{"reject bad offset", &WireReject{Offset: -1, Length: 1}, "offset -1"},
	}
	for _, tc := range cases {
		_, err := EncodeWire(tc.m)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrMalformedWire) {
			t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// FuzzDecodeWireMessage checks that no input panics the decoder and that
// whatever decodes re-encodes to the same bytes and decodes to the same value.
func FuzzDecodeWireMessage(f *testing.F) {
	raw, err := os.ReadFile("testdata/wire_vectors.json")
	if err != nil {
		f.Fatal(err)
	}
	var vec wireVectors
	if err := json.Unmarshal(raw, &vec); err != nil {
		f.Fatal(err)
	}
	for _, v := range vec.Valid {
		b, _ := hex.DecodeString(v.Hex)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeWire(b)
		if err != nil {
			if m != nil {
				t.Fatal("message returned with an error")
			}
			return
		}
		enc, err := EncodeWire(m)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", m, err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding %x gives %x", b, enc)
		}
		m2, err := DecodeWire(enc)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("second decode %#v, %v; want %#v", m2, err, m)
		}
	})
}
