package protocol

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
)

// Bitfield is one bit per block, most significant bit first: block i is
// bit 7-(i%8) of byte i/8. Bits past the block count are zero. In JSON it
// is a string holding standard base64 (with padding) of the bytes, which is
// what btoa produces in the browser.
type Bitfield []byte

// NewBitfield returns an empty bitfield for blocks blocks.
func NewBitfield(blocks int) Bitfield {
	return make(Bitfield, (blocks+7)/8)
}

// Has reports whether block i is set; out-of-range blocks are not.
func (b Bitfield) Has(i int) bool {
	if i < 0 || i/8 >= len(b) {
		return false
	}
	return b[i/8]&(0x80>>(i%8)) != 0
}

// Set marks block i as held; out-of-range blocks are ignored.
func (b Bitfield) Set(i int) {
	if i < 0 || i/8 >= len(b) {
		return
	}
	b[i/8] |= 0x80 >> (i % 8)
}

// Count returns how many blocks are set.
func (b Bitfield) Count() int {
	n := 0
	for _, x := range b {
		n += bits.OnesCount8(x)
	}
	return n
}

// CountMissing returns how many blocks b holds that other does not: how
// much the holder of b could give the holder of other.
func (b Bitfield) CountMissing(other Bitfield) int {
	n := 0
	for i, x := range b {
		var y byte
		if i < len(other) {
			y = other[i]
		}
		n += bits.OnesCount8(x &^ y)
	}
	return n
}

// Check verifies that b is a bitfield for exactly blocks blocks.
func (b Bitfield) Check(blocks int) error {
	if want := (blocks + 7) / 8; len(b) != want {
		return fmt.Errorf("bitfield has %d bytes, %d blocks need %d", len(b), blocks, want)
	}
	if rem := blocks % 8; rem != 0 && len(b) > 0 && b[len(b)-1]&(0xff>>rem) != 0 {
		return errors.New("bitfield has bits set past the last block")
	}
	return nil
}

// MarshalJSON encodes the bitfield as a base64 string; nil is "".
func (b Bitfield) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(b))+2)
	out = append(out, '"')
	out = base64.StdEncoding.AppendEncode(out, b)
	return append(out, '"'), nil
}

// UnmarshalJSON decodes a base64 string, refusing one longer than
// MaxBitfieldBytes before decoding it.
func (b *Bitfield) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return errors.New("bitfield is not a string")
	}
	if len(s) > base64.StdEncoding.EncodedLen(MaxBitfieldBytes) {
		return fmt.Errorf("bitfield longer than %d blocks", MaxBlocks)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return errors.New("bitfield is not standard padded base64")
	}
	*b = raw
	return nil
}
