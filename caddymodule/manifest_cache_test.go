package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"runtime"
	"testing"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// syntheticManifest has n blocks of 16 KiB whose digests are made the way
// the block hasher makes them, without reading n blocks of data.
func syntheticManifest(seed, n int) *protocol.Manifest {
	var blocks []string
	for i := range n {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:], uint64(seed))
		binary.BigEndian.PutUint64(b[8:], uint64(i))
		sum := sha256.Sum256(b[:])
		blocks = append(blocks, hex.EncodeToString(sum[:]))
	}
	size := int64(n) * protocol.MinBlockSize
	return &protocol.Manifest{ID: protocol.SwarmID(size, protocol.MinBlockSize, blocks), URL: fmt.Sprintf("/files/f%d.bin", seed),
		Size: size, BlockSize: protocol.MinBlockSize, Blocks: blocks, ETag: `"1a2b3c4d5e"`,
		LastModified: "Thu, 01 Jan 2026 00:00:00 GMT", ContentType: "application/octet-stream"}
}

// liveHeap is the heap in use after two collections (the second empties
// sync.Pools, such as encoding/json's buffers).
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func testManifestService(t *testing.T) *manifestService {
	t.Helper()
	h := &Handler{logger: nopLogger(), metrics: metricsFor(nil)}
	fillDefaults(h)
	return newManifestService(h)
}

// The cache's estimate of an entry is what the entry really holds on the
// heap (within 15%), for a big manifest and for many small ones.
func TestManifestEntryCostMatchesTheHeap(t *testing.T) {
	for _, c := range []struct{ entries, blocks int }{{8, 16384}, {2000, 1}} {
		t.Run(fmt.Sprintf("%dx%d blocks", c.entries, c.blocks), func(t *testing.T) {
			s := testManifestService(t)
			s.maxBytes = 1 << 40
			manifests := make([]*protocol.Manifest, c.entries)
			for i := range manifests {
				manifests[i] = syntheticManifest(i, c.blocks)
			}
			before := liveHeap()
			for _, m := range manifests {
				e, err := newManifestEntry(manifestKey{site: "http://127.0.0.1:8080", target: m.URL}, m)
				if err != nil {
					t.Fatal(err)
				}
				s.store(e)
			}
			// The manifests are alive before and after: the difference is
			// what the cache keeps, except the strings its entries share
			// with them (in production the manifests are gone).
			held := float64(int64(liveHeap()) - int64(before))
			for _, m := range manifests {
				held += float64(len(m.ID) + len(m.URL) + len(m.ETag) + len(m.LastModified) + len(m.ContentType))
			}
			runtime.KeepAlive(s)
			t.Logf("%d entries of %d blocks: %.0f bytes held, %d estimated; %.1f bytes per block",
				c.entries, c.blocks, held, s.bytes, held/float64(c.entries*c.blocks))
			if ratio := float64(s.bytes) / held; ratio < 0.85 || ratio > 1.15 {
				t.Errorf("estimate %d bytes for %.0f held (ratio %.2f)", s.bytes, held, ratio)
			}
		})
	}
}

func TestManifestCacheIsBoundedByBytes(t *testing.T) {
	s := testManifestService(t)
	s.maxBytes = 4 << 20
	var ids []string
	for i := range 20 {
		m := syntheticManifest(i, 16384) // about 1.1 MB each
		ids = append(ids, m.ID)
		e, err := newManifestEntry(manifestKey{site: "http://a.test", target: m.URL}, m)
		if err != nil {
			t.Fatal(err)
		}
		s.store(e)
		if s.bytes > s.maxBytes {
			t.Fatalf("after %d manifests the cache holds %d bytes, bound %d", i+1, s.bytes, s.maxBytes)
		}
	}
	if !s.Known("http://a.test", ids[19]) || s.Known("http://a.test", ids[0]) {
		t.Errorf("the newest manifest must be kept and the oldest evicted")
	}
	if n := s.lru.Len(); n < 2 || n > 4 {
		t.Errorf("%d manifests of 1.1 MB kept under 4 MiB", n)
	}
}

// The default budget holds several of the largest manifests the
// configuration allows.
func TestManifestCacheBudgetFitsTheLargestManifests(t *testing.T) {
	h := &Handler{logger: nopLogger(), metrics: metricsFor(nil), BlockSize: protocol.MinBlockSize, MaxSize: 16 << 30}
	fillDefaults(h)
	s := newManifestService(h)
	largest := manifestCostEstimate(protocol.BlockCount(h.MaxSize, h.BlockSize))
	if s.maxBytes < 4*largest {
		t.Errorf("budget %d bytes holds fewer than 4 manifests of %d bytes", s.maxBytes, largest)
	}
}

// Two URLs with the same bytes share one swarm id: evicting the manifest
// of one must leave the id known for the other.
func TestSwarmIDStaysKnownWhileAManifestCarriesIt(t *testing.T) {
	s := testManifestService(t)
	const site = "http://a.test"
	m := syntheticManifest(1, 10)
	for _, target := range []string{"/a.bin", "/copy-of-a.bin"} {
		mm := *m
		mm.URL = target
		e, err := newManifestEntry(manifestKey{site, target}, &mm)
		if err != nil {
			t.Fatal(err)
		}
		s.store(e)
	}
	s.mu.Lock()
	s.removeLocked(s.byKey[manifestKey{site, "/a.bin"}])
	s.mu.Unlock()
	if !s.Known(site, m.ID) {
		t.Fatal("the id was forgotten while /copy-of-a.bin's manifest still carries it")
	}
	if n, ok := s.Blocks(m.ID); !ok || n != 10 {
		t.Fatalf("Blocks: %d, %v", n, ok)
	}
	s.mu.Lock()
	s.removeLocked(s.byKey[manifestKey{site, "/copy-of-a.bin"}])
	s.mu.Unlock()
	if s.Known(site, m.ID) {
		t.Fatal("the id is still known with no manifest carrying it")
	}
}

// A manifest evicted while its revalidation was on the way is served after
// the 304: its id must be known again, or its swarm cannot be joined.
func TestRevalidationRegistersTheSwarmAgain(t *testing.T) {
	s := testManifestService(t)
	key := manifestKey{"http://a.test", "/a.bin"}
	e, err := newManifestEntry(key, syntheticManifest(2, 10))
	if err != nil {
		t.Fatal(err)
	}
	s.store(e)
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Other builds push the entry out meanwhile.
		s.mu.Lock()
		s.removeLocked(s.byKey[key])
		s.mu.Unlock()
		w.WriteHeader(http.StatusNotModified)
	})
	tmpl := &http.Request{Host: "a.test", Header: http.Header{}}
	got, result, err := s.fetch(context.Background(), origin, tmpl, key, "127.0.0.1")
	if err != nil || result != "revalidated" || got != e {
		t.Fatalf("fetch: %v, %q, %v", got, result, err)
	}
	if !s.Known(key.site, e.manifest.ID) {
		t.Fatal("the manifest was served after a 304, but its swarm id is unknown")
	}
}
