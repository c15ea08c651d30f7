package protocol

import (
	"strings"
	"testing"
)

// A join for MaxBlocks blocks encodes and decodes; a join past
// MaxJoinMessageSize, or any other message past 64 KiB, does not.
func TestJoinForMaxBlocksEncodes(t *testing.T) {
	full := NewBitfield(MaxBlocks)
	for i := range MaxBlocks {
		full.Set(i)
	}
	// The longest URL, every byte of it escaped the longest way JSON allows.
	j := &Join{Swarm: strings.Repeat("a", 64), URL: "/" + strings.Repeat("\u00e9", (MaxURLSize-1)/2), Blocks: MaxBlocks, Bitfield: full}
	b, err := EncodeCoordinatorMessage(j)
	if err != nil {
		t.Fatalf("encoding a join for %d blocks: %v", MaxBlocks, err)
	}
	escaped := strings.Replace(string(b), j.URL, strings.Repeat(`\u00e9`, (MaxURLSize-1)/2), 1)
	if len(escaped) > MaxJoinMessageSize {
		t.Fatalf("the largest join takes %d bytes, more than MaxJoinMessageSize %d", len(escaped), MaxJoinMessageSize)
	}
	m, err := DecodeCoordinatorMessage([]byte(escaped))
	if err != nil {
		t.Fatalf("decoding a join for %d blocks: %v", MaxBlocks, err)
	}
	if got := m.(*Join); got.Blocks != MaxBlocks || got.Bitfield.Count() != MaxBlocks {
		t.Fatalf("decoded %d blocks, %d set", got.Blocks, got.Bitfield.Count())
	}

	padded := []byte(`{"type":"join"` + strings.Repeat(" ", MaxJoinMessageSize) + `}`)
	if _, err := DecodeCoordinatorMessage(padded); err != ErrMessageTooLarge {
		t.Errorf("a join past %d bytes: %v", MaxJoinMessageSize, err)
	}
	leave := []byte(`{"type":"leave"` + strings.Repeat(" ", MaxCoordinatorMessageSize) + `}`)
	if _, err := DecodeCoordinatorMessage(leave); err != ErrMessageTooLarge {
		t.Errorf("a leave past %d bytes: %v", MaxCoordinatorMessageSize, err)
	}
}
