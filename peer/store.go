package peer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// ErrBadBlock means bytes did not match the manifest hash of their block.
var ErrBadBlock = errors.New("peer: block does not match the manifest")

// ErrWrite means a verified block could not be written to the destination
// (disk full, file closed...). It ends the download: no peer or retry can
// fix it, and it is never blamed on the peer that sent the block. The OS
// error stays in the chain (errors.Is(err, syscall.ENOSPC)).
var ErrWrite = errors.New("peer: cannot write the destination")

// BlockStore holds the verified blocks of one manifest version. A block is
// written to the destination only after VerifyBlock accepted it, and read
// back for serving only if it verifies again, so neither a lying peer nor a
// file changed on disk can make us pass on wrong bytes.
type BlockStore struct {
	m    *protocol.Manifest
	w    io.WriterAt
	r    io.ReaderAt // nil: blocks can be stored but not served
	mu   sync.Mutex
	have []bool
	n    int
}

// NewBlockStore returns an empty store writing to w; it serves blocks back
// if w is also an io.ReaderAt.
func NewBlockStore(m *protocol.Manifest, w io.WriterAt) *BlockStore {
	s := &BlockStore{m: m, w: w, have: make([]bool, len(m.Blocks))}
	s.r, _ = w.(io.ReaderAt)
	return s
}

// NewSeedStore returns a store over existing content, marking the blocks of
// r that verify. A nil r gives an empty store that cannot serve.
func NewSeedStore(m *protocol.Manifest, r io.ReaderAt) (*BlockStore, error) {
	s := &BlockStore{m: m, r: r, have: make([]bool, len(m.Blocks))}
	if r == nil {
		return s, nil
	}
	buf := make([]byte, m.BlockSize)
	for i := range m.Blocks {
		off, n := m.BlockRange(i)
		k, err := r.ReadAt(buf[:n], off)
		if k < n {
			if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break // a short file: the blocks past its end are missing
			}
			return nil, fmt.Errorf("peer: reading block %d to seed: %w", i, err)
		}
		if m.VerifyBlock(i, buf[:n]) {
			s.have[i] = true
			s.n++
		}
	}
	return s, nil
}

// CheckContent verifies that r holds exactly the resource of m: the right
// size (when r has a Size or Stat method) and every block matching its
// hash. The error names the first block that does not.
func CheckContent(m *protocol.Manifest, r io.ReaderAt) error {
	if sz, ok := contentSize(r); ok && sz != m.Size {
		return fmt.Errorf("peer: content is %d bytes, the manifest says %d", sz, m.Size)
	}
	buf := make([]byte, m.BlockSize)
	for i := range m.Blocks {
		off, n := m.BlockRange(i)
		k, err := r.ReadAt(buf[:n], off)
		if k < n {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("peer: block %d (bytes %d-%d): %w", i, off, off+int64(n)-1, err)
		}
		if !m.VerifyBlock(i, buf[:n]) {
			return fmt.Errorf("peer: block %d (bytes %d-%d): %w", i, off, off+int64(n)-1, ErrBadBlock)
		}
	}
	return nil
}

func contentSize(r io.ReaderAt) (int64, bool) {
	switch v := r.(type) {
	case interface{ Size() int64 }:
		return v.Size(), true
	case interface{ Stat() (os.FileInfo, error) }:
		if fi, err := v.Stat(); err == nil {
			return fi.Size(), true
		}
	}
	return 0, false
}

// Manifest returns the manifest the store verifies against.
func (s *BlockStore) Manifest() *protocol.Manifest { return s.m }

// Put verifies data as block i and writes it. It returns added=false for a
// block already held (a duplicate from endgame), and ErrBadBlock, writing
// nothing, when data is not block i.
func (s *BlockStore) Put(i int, data []byte) (added bool, err error) {
	if !s.m.VerifyBlock(i, data) {
		return false, fmt.Errorf("block %d: %w", i, ErrBadBlock)
	}
	s.mu.Lock()
	defer s.mu.Unlock() // held across the write so Has never runs ahead of the bytes
	if s.have[i] {
		return false, nil
	}
	if s.w == nil {
		return false, errors.New("peer: store is read-only")
	}
	off, _ := s.m.BlockRange(i)
	if _, err := s.w.WriteAt(data, off); err != nil {
		return false, fmt.Errorf("%w: block %d: %w", ErrWrite, i, err)
	}
	s.have[i] = true
	s.n++
	return true, nil
}

// Has reports whether block i is verified here.
func (s *BlockStore) Has(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return i >= 0 && i < len(s.have) && s.have[i]
}

// CanServe reports whether blocks can be read back for other peers.
func (s *BlockStore) CanServe() bool { return s.r != nil }

// Count returns the number of verified blocks.
func (s *BlockStore) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Complete reports whether every block is verified.
func (s *BlockStore) Complete() bool { return s.Count() == len(s.have) }

// Have returns a copy of the verified-block flags.
func (s *BlockStore) Have() []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bool(nil), s.have...)
}

// Bitfield returns the verified blocks as a wire bitfield.
func (s *BlockStore) Bitfield() protocol.Bitfield {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.CanServe() {
		return protocol.NewBitfield(len(s.have)) // nothing to offer
	}
	bf := protocol.NewBitfield(len(s.have))
	for i, ok := range s.have {
		if ok {
			bf.Set(i)
		}
	}
	return bf
}

// ReadBlock reads block i into buf (at least BlockSize long) and verifies it
// again; it fails if the block is not held or no longer matches.
func (s *BlockStore) ReadBlock(i int, buf []byte) ([]byte, error) {
	if !s.Has(i) || s.r == nil {
		return nil, fmt.Errorf("peer: block %d not held", i)
	}
	off, n := s.m.BlockRange(i)
	if _, err := s.r.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("peer: reading block %d: %w", i, err)
	}
	if !s.m.VerifyBlock(i, buf[:n]) {
		s.mu.Lock()
		if s.have[i] {
			s.have[i] = false // changed under us: stop offering it
			s.n--
		}
		s.mu.Unlock()
		return nil, fmt.Errorf("block %d on disk: %w", i, ErrBadBlock)
	}
	return buf[:n], nil
}

// MemFile is an in-memory io.WriterAt and io.ReaderAt, for tests and small
// downloads that should be seeded while they run.
type MemFile struct {
	mu   sync.Mutex
	data []byte
}

// WriteAt implements io.WriterAt, growing the buffer as needed.
func (f *MemFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("memfile: negative offset")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if end := int(off) + len(p); end > len(f.data) {
		f.data = append(f.data, make([]byte, end-len(f.data))...)
	}
	return copy(f.data[off:], p), nil
}

// ReadAt implements io.ReaderAt.
func (f *MemFile) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if off >= int64(len(f.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Truncate sets the length, so a restarted download of a shorter version
// leaves no byte of the old one.
func (f *MemFile) Truncate(size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if size < int64(len(f.data)) {
		f.data = f.data[:size]
	} else {
		f.data = append(f.data, make([]byte, int(size)-len(f.data))...)
	}
	return nil
}

// Bytes returns a copy of the content.
func (f *MemFile) Bytes() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.data...)
}
