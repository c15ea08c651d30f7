package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The peer wire protocol: binary messages exchanged between two peers over one
// reliable, ordered WebRTC DataChannel. Every message is one DataChannel
// message; its first byte is the message type and all integers are big-endian,
// so a browser decodes them with a DataView and no library. docs/PROTOCOL.md §4
// is the normative description; testdata/wire_vectors.json holds the vectors
// both the Go and the JS implementations are checked against.

// WireVersion is the protocol version a peer announces in its Hello. A peer
// that receives another version closes the channel: versions never mix.
const WireVersion = 1

// Wire limits. MaxPieceData keeps every message far below the smallest
// maxMessageSize browsers accept (Chromium: 256 KiB) so a piece never throws.
const (
	MaxPieceData   = 16 << 10
	MaxSwarmIDLen  = 128
	MaxWireMessage = 1 + 1 + 1 + MaxSwarmIDLen + 4 + MaxBlocks/8
)

// DataChannelLabel is the label of the one channel two peers open.
const DataChannelLabel = "p2pxhr-v1"

// WireType is the first byte of every peer message.
type WireType uint8

// Message types.
const (
	WireTypeHello   WireType = 1
	WireTypeHave    WireType = 2
	WireTypeRequest WireType = 3
	WireTypePiece   WireType = 4
	WireTypeCancel  WireType = 5
	WireTypeReject  WireType = 6
)

func (t WireType) String() string {
	switch t {
	case WireTypeHello:
		return "hello"
	case WireTypeHave:
		return "have"
	case WireTypeRequest:
		return "request"
	case WireTypePiece:
		return "piece"
	case WireTypeCancel:
		return "cancel"
	case WireTypeReject:
		return "reject"
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// RejectReason says why a peer declined a request.
type RejectReason uint8

// WireReject reasons. A receiver must treat unknown reasons like RejectOther so
// new reasons can be added without a version bump.
const (
	RejectOther    RejectReason = 0
	RejectBusy     RejectReason = 1 // too many queued requests: retry later or elsewhere
	RejectNotHave  RejectReason = 2 // the block is not (or no longer) verified here
	RejectInvalid  RejectReason = 3 // range outside the block
	RejectShutdown RejectReason = 4 // the peer is leaving the swarm
)

// ErrMalformedWire is wrapped by every decoding and encoding error, so callers
// can tell a protocol violation (close the channel) from anything else.
var ErrMalformedWire = errors.New("malformed wire message")

// WireMessage is one of *WireHello, *WireHave, *WireRequest, *WirePiece, *WireCancel, *WireReject.
type WireMessage interface {
	WireType() WireType
}

// WireHello is the first message each side sends once the channel opens.
// BlockCount must equal the manifest's; the receiver checks SwarmID and
// BlockCount against its own manifest and closes on a mismatch.
type WireHello struct {
	Version    uint8
	SwarmID    string
	BlockCount int
	// Bitfield has BlockCount bits, most significant bit first: bit i set
	// means block i is verified at the sender.
	Bitfield Bitfield
}

// WireHave announces one more verified block.
type WireHave struct {
	Block int
}

// WireRequest asks for Length bytes of a block starting at Offset. A whole block
// is Offset 0 and Length equal to the block's length.
type WireRequest struct {
	Block  int
	Offset int
	Length int
}

// WirePiece carries part of a requested range. Pieces answering one request are
// sent in order and each holds 1..MaxPieceData bytes.
type WirePiece struct {
	Block  int
	Offset int
	Data   []byte
}

// WireCancel withdraws a Request with the same fields; pieces already sent may
// still arrive and are ignored by the receiver.
type WireCancel struct {
	Block  int
	Offset int
	Length int
}

// WireReject declines a Request with the same fields.
type WireReject struct {
	Block  int
	Offset int
	Length int
	Reason RejectReason
}

// WireType implements WireMessage.
func (*WireHello) WireType() WireType { return WireTypeHello }

// WireType implements WireMessage.
func (*WireHave) WireType() WireType { return WireTypeHave }

// WireType implements WireMessage.
func (*WireRequest) WireType() WireType { return WireTypeRequest }

// WireType implements WireMessage.
func (*WirePiece) WireType() WireType { return WireTypePiece }

// WireType implements WireMessage.
func (*WireCancel) WireType() WireType { return WireTypeCancel }

// WireType implements WireMessage.
func (*WireReject) WireType() WireType { return WireTypeReject }

func wireErr(t WireType, format string, args ...any) error {
	return fmt.Errorf("wire %s: %s: %w", t, fmt.Sprintf(format, args...), ErrMalformedWire)
}

// checkRange validates the block/offset/length triple shared by request,
// cancel and reject. Offsets and lengths are bounded by MaxBlockSize, the
// largest block any manifest may have.
func checkRange(t WireType, block, off, n int) error {
	switch {
	case block < 0 || block >= MaxBlocks:
		return wireErr(t, "block index %d out of range [0, %d)", block, MaxBlocks)
	case off < 0 || off >= MaxBlockSize:
		return wireErr(t, "offset %d out of range [0, %d)", off, MaxBlockSize)
	case n <= 0 || n > MaxBlockSize:
		return wireErr(t, "length %d out of range [1, %d]", n, MaxBlockSize)
	case off+n > MaxBlockSize:
		return wireErr(t, "offset %d + length %d exceeds the block size limit %d", off, n, MaxBlockSize)
	}
	return nil
}

// EncodeWire returns the bytes of m after checking it against the same
// limits the decoder enforces, so a peer never sends what it would refuse.
func EncodeWire(m WireMessage) ([]byte, error) {
	return AppendWire(nil, m)
}

// AppendWire appends the encoding of m to dst.
func AppendWire(dst []byte, m WireMessage) ([]byte, error) {
	switch m := m.(type) {
	case *WireHello:
		if m.Version != WireVersion {
			return nil, wireErr(WireTypeHello, "unsupported version %d, want %d", m.Version, WireVersion)
		}
		if len(m.SwarmID) == 0 || len(m.SwarmID) > MaxSwarmIDLen {
			return nil, wireErr(WireTypeHello, "swarm id length %d out of range [1, %d]", len(m.SwarmID), MaxSwarmIDLen)
		}
		if m.BlockCount < 0 || m.BlockCount > MaxBlocks {
			return nil, wireErr(WireTypeHello, "block count %d out of range [0, %d]", m.BlockCount, MaxBlocks)
		}
		if err := checkWireBitfield(m.BlockCount, m.Bitfield); err != nil {
			return nil, wireErr(WireTypeHello, "%v", err)
		}
		dst = append(dst, byte(WireTypeHello), m.Version, byte(len(m.SwarmID)))
		dst = append(dst, m.SwarmID...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(m.BlockCount))
		return append(dst, m.Bitfield...), nil
	case *WireHave:
		if m.Block < 0 || m.Block >= MaxBlocks {
			return nil, wireErr(WireTypeHave, "block index %d out of range [0, %d)", m.Block, MaxBlocks)
		}
		return binary.BigEndian.AppendUint32(append(dst, byte(WireTypeHave)), uint32(m.Block)), nil
	case *WireRequest:
		return appendRange(dst, WireTypeRequest, m.Block, m.Offset, m.Length)
	case *WireCancel:
		return appendRange(dst, WireTypeCancel, m.Block, m.Offset, m.Length)
	case *WireReject:
		dst, err := appendRange(dst, WireTypeReject, m.Block, m.Offset, m.Length)
		if err != nil {
			return nil, err
		}
		return append(dst, byte(m.Reason)), nil
	case *WirePiece:
		if err := checkPiece(m.Block, m.Offset, len(m.Data)); err != nil {
			return nil, err
		}
		dst = append(dst, byte(WireTypePiece))
		dst = binary.BigEndian.AppendUint32(dst, uint32(m.Block))
		dst = binary.BigEndian.AppendUint32(dst, uint32(m.Offset))
		return append(dst, m.Data...), nil
	case nil:
		return nil, fmt.Errorf("wire: nil message: %w", ErrMalformedWire)
	}
	return nil, fmt.Errorf("wire: unknown message %T: %w", m, ErrMalformedWire)
}

func appendRange(dst []byte, t WireType, block, off, n int) ([]byte, error) {
	if err := checkRange(t, block, off, n); err != nil {
		return nil, err
	}
	dst = append(dst, byte(t))
	dst = binary.BigEndian.AppendUint32(dst, uint32(block))
	dst = binary.BigEndian.AppendUint32(dst, uint32(off))
	return binary.BigEndian.AppendUint32(dst, uint32(n)), nil
}

func checkPiece(block, off, n int) error {
	switch {
	case block < 0 || block >= MaxBlocks:
		return wireErr(WireTypePiece, "block index %d out of range [0, %d)", block, MaxBlocks)
	case n == 0:
		return wireErr(WireTypePiece, "empty data")
	case n > MaxPieceData:
		return wireErr(WireTypePiece, "data length %d exceeds %d", n, MaxPieceData)
	case off < 0 || off+n > MaxBlockSize:
		return wireErr(WireTypePiece, "offset %d + length %d exceeds the block size limit %d", off, n, MaxBlockSize)
	}
	return nil
}

// DecodeWire parses one DataChannel message. It accepts exactly one encoding
// per message (exact lengths, zero padding bits), so decode→encode gives the
// input back. A Piece's Data aliases b: copy it before b is reused.
func DecodeWire(b []byte) (WireMessage, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("wire: empty message: %w", ErrMalformedWire)
	}
	if len(b) > MaxWireMessage {
		return nil, fmt.Errorf("wire: message of %d bytes exceeds %d: %w", len(b), MaxWireMessage, ErrMalformedWire)
	}
	t, body := WireType(b[0]), b[1:]
	switch t {
	case WireTypeHello:
		h, err := decodeHello(body)
		if err != nil {
			return nil, err // never a typed nil inside the interface
		}
		return h, nil
	case WireTypeHave:
		if len(body) != 4 {
			return nil, wireErr(t, "length %d, want 5", len(b))
		}
		m := &WireHave{Block: int(binary.BigEndian.Uint32(body))}
		if m.Block >= MaxBlocks {
			return nil, wireErr(t, "block index %d out of range [0, %d)", m.Block, MaxBlocks)
		}
		return m, nil
	case WireTypeRequest, WireTypeCancel, WireTypeReject:
		want := 12
		if t == WireTypeReject {
			want = 13
		}
		if len(body) != want {
			return nil, wireErr(t, "length %d, want %d", len(b), want+1)
		}
		block := int(binary.BigEndian.Uint32(body))
		off := int(binary.BigEndian.Uint32(body[4:]))
		n := int(binary.BigEndian.Uint32(body[8:]))
		if err := checkRange(t, block, off, n); err != nil {
			return nil, err
		}
		switch t {
		case WireTypeRequest:
			return &WireRequest{Block: block, Offset: off, Length: n}, nil
		case WireTypeCancel:
			return &WireCancel{Block: block, Offset: off, Length: n}, nil
		}
		return &WireReject{Block: block, Offset: off, Length: n, Reason: RejectReason(body[12])}, nil
	case WireTypePiece:
		if len(body) < 8 {
			return nil, wireErr(t, "length %d, want at least 10", len(b))
		}
		m := &WirePiece{
			Block:  int(binary.BigEndian.Uint32(body)),
			Offset: int(binary.BigEndian.Uint32(body[4:])),
			Data:   body[8:],
		}
		if err := checkPiece(m.Block, m.Offset, len(m.Data)); err != nil {
			return nil, err
		}
		return m, nil
	}
	return nil, fmt.Errorf("wire: unknown message type %d: %w", b[0], ErrMalformedWire)
}

func decodeHello(body []byte) (*WireHello, error) {
	const t = WireTypeHello
	if len(body) < 2 {
		return nil, wireErr(t, "truncated header")
	}
	m := &WireHello{Version: body[0]}
	if m.Version != WireVersion {
		return nil, wireErr(t, "unsupported version %d, want %d", m.Version, WireVersion)
	}
	idLen := int(body[1])
	if idLen == 0 || idLen > MaxSwarmIDLen {
		return nil, wireErr(t, "swarm id length %d out of range [1, %d]", idLen, MaxSwarmIDLen)
	}
	body = body[2:]
	if len(body) < idLen+4 {
		return nil, wireErr(t, "truncated swarm id or block count")
	}
	m.SwarmID = string(body[:idLen])
	count := binary.BigEndian.Uint32(body[idLen:])
	if count > MaxBlocks {
		return nil, wireErr(t, "block count %d exceeds %d", count, MaxBlocks)
	}
	m.BlockCount = int(count)
	bits := body[idLen+4:]
	if err := checkWireBitfield(m.BlockCount, bits); err != nil {
		return nil, wireErr(t, "%v", err)
	}
	// A copy, so the message outlives the DataChannel's buffer.
	m.Bitfield = NewBitfield(m.BlockCount)
	copy(m.Bitfield, bits)
	return m, nil
}

// checkWireBitfield accepts exactly ceil(n/8) bytes with the padding bits of
// the last byte zero: one encoding per set of blocks.
func checkWireBitfield(n int, b []byte) error {
	if want := (n + 7) / 8; len(b) != want {
		return fmt.Errorf("bitfield is %d bytes, want %d for %d blocks", len(b), want, n)
	}
	if pad := n % 8; pad != 0 && b[len(b)-1]&(0xff>>pad) != 0 {
		return fmt.Errorf("bitfield has padding bits set after block %d", n-1)
	}
	return nil
}
