// Package protocol owns everything that crosses a wire in P2PXHR: the
// manifest format, the coordinator messages and the peer wire messages,
// with their encoders, decoders and limits.
//
// It imports the standard library only, so the Caddy module, the
// coordinator, the Go peer and the tests can all share it.
package protocol

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
)

// Block size bounds. Blocks are the unit of verification and exchange.
const (
	MinBlockSize     = 16 << 10
	MaxBlockSize     = 4 << 20
	DefaultBlockSize = 256 << 10
	// MaxBlocks bounds a manifest so that a decoder never allocates without
	// limit: 4 GiB at the default block size is 16384 blocks.
	MaxBlocks = 1 << 20
)

// Manifest describes one version of a shareable resource. Block hashes are
// lowercase hex SHA-256 digests, one per block, in order; the last block may
// be short. ID is the swarm id: a digest over size, block size and every
// block hash, so the same bytes share a swarm and changed bytes never mix.
type Manifest struct {
	ID           string   `json:"id"`
	URL          string   `json:"url"`
	Size         int64    `json:"size"`
	BlockSize    int      `json:"blockSize"`
	Blocks       []string `json:"blocks"`
	ETag         string   `json:"etag,omitempty"`
	LastModified string   `json:"lastModified,omitempty"`
	ContentType  string   `json:"contentType,omitempty"`
	// Headers are the origin's response headers as a page reading the
	// response would see them: lowercase names, several values of one
	// name joined by ", ". Set-Cookie, hop-by-hop headers and those that
	// describe one response rather than the resource (Date, Age) are left
	// out. Optional: clients fall back to the fields above.
	Headers map[string]string `json:"headers,omitempty"`
}

// BlockCount returns how many blocks a resource of size bytes has.
func BlockCount(size int64, blockSize int) int {
	if size <= 0 {
		return 0
	}
	return int((size + int64(blockSize) - 1) / int64(blockSize))
}

// BlockRange returns the byte offset and length of block i.
func (m *Manifest) BlockRange(i int) (off int64, n int) {
	off = int64(i) * int64(m.BlockSize)
	end := off + int64(m.BlockSize)
	if end > m.Size {
		end = m.Size
	}
	return off, int(end - off)
}

// VerifyBlock reports whether data is block i of this manifest.
func (m *Manifest) VerifyBlock(i int, data []byte) bool {
	if i < 0 || i >= len(m.Blocks) {
		return false
	}
	if _, n := m.BlockRange(i); n != len(data) {
		return false
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]) == m.Blocks[i]
}

// SwarmID computes the swarm id of a resource from its size, block size and
// block hashes (hex). Anything else (URL, ETag) is deliberately left out: the
// same bytes under two URLs may share one swarm.
func SwarmID(size int64, blockSize int, blocks []string) string {
	h := sha256.New()
	h.Write([]byte("p2pxhr-manifest-v1\n"))
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(size))
	binary.BigEndian.PutUint64(buf[8:], uint64(blockSize))
	h.Write(buf[:])
	for _, b := range blocks {
		raw, _ := hex.DecodeString(b)
		h.Write(raw)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Validate checks that a manifest is internally consistent: sizes in
// bounds, one well-formed hash per block, and an id that matches them.
func (m *Manifest) Validate() error {
	switch {
	case m.Size < 0:
		return errors.New("manifest: negative size")
	case m.BlockSize < MinBlockSize || m.BlockSize > MaxBlockSize:
		return fmt.Errorf("manifest: block size %d outside [%d, %d]", m.BlockSize, MinBlockSize, MaxBlockSize)
	}
	want := BlockCount(m.Size, m.BlockSize)
	if want > MaxBlocks {
		return fmt.Errorf("manifest: %d blocks exceeds the limit of %d", want, MaxBlocks)
	}
	if len(m.Blocks) != want {
		return fmt.Errorf("manifest: %d block hashes for %d blocks", len(m.Blocks), want)
	}
	for i, b := range m.Blocks {
		if len(b) != 2*sha256.Size {
			return fmt.Errorf("manifest: block %d hash has length %d", i, len(b))
		}
		if _, err := hex.DecodeString(b); err != nil {
			return fmt.Errorf("manifest: block %d hash is not hex", i)
		}
	}
	if m.ID != SwarmID(m.Size, m.BlockSize, m.Blocks) {
		return errors.New("manifest: id does not match the block hashes")
	}
	return nil
}

// BlockHasher is an io.Writer that hashes a stream block by block, so a
// manifest is built in one pass without holding the resource in memory.
type BlockHasher struct {
	blockSize int
	h         hash.Hash
	filled    int
	size      int64
	blocks    []string
}

// NewBlockHasher returns a hasher cutting the stream into blockSize blocks.
func NewBlockHasher(blockSize int) *BlockHasher {
	return &BlockHasher{blockSize: blockSize, h: sha256.New()}
}

// Write hashes p, closing a block every blockSize bytes. It never fails.
func (b *BlockHasher) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		take := b.blockSize - b.filled
		if take > len(p) {
			take = len(p)
		}
		b.h.Write(p[:take])
		b.filled += take
		b.size += int64(take)
		p = p[take:]
		if b.filled == b.blockSize {
			b.closeBlock()
		}
	}
	return n, nil
}

// Size returns the number of bytes written so far.
func (b *BlockHasher) Size() int64 { return b.size }

func (b *BlockHasher) closeBlock() {
	b.blocks = append(b.blocks, hex.EncodeToString(b.h.Sum(nil)))
	b.h.Reset()
	b.filled = 0
}

// Manifest finishes the stream and returns its manifest; url, etag and the
// other descriptive fields are left for the caller to fill.
func (b *BlockHasher) Manifest() *Manifest {
	if b.filled > 0 {
		b.closeBlock()
	}
	blocks := b.blocks
	if blocks == nil {
		blocks = []string{}
	}
	return &Manifest{
		ID:        SwarmID(b.size, b.blockSize, blocks),
		Size:      b.size,
		BlockSize: b.blockSize,
		Blocks:    blocks,
	}
}
