package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func fetchManifest(t *testing.T, base, url string) (*http.Response, *protocol.Manifest) {
	t.Helper()
	res, body := get(t, base+"/_p2pxhr/manifest?url="+url)
	if res.StatusCode != http.StatusOK {
		return res, nil
	}
	var m protocol.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("manifest is not JSON: %v: %s", err, body)
	}
	return res, &m
}

// independentHashes cuts data into blocks and hashes each with crypto/sha256.
func independentHashes(data []byte, blockSize int) []string {
	hashes := []string{}
	for off := 0; off < len(data); off += blockSize {
		end := min(off+blockSize, len(data))
		sum := sha256.Sum256(data[off:end])
		hashes = append(hashes, hex.EncodeToString(sum[:]))
	}
	return hashes
}

func TestManifestHashesMatchIndependentSHA256(t *testing.T) {
	for _, bs := range []int{protocol.MinBlockSize, protocol.DefaultBlockSize, protocol.MaxBlockSize} {
		t.Run(fmt.Sprintf("block=%d", bs), func(t *testing.T) {
			root := t.TempDir()
			sizes := []int{0, 1, bs - 1, bs, bs + 1, 5*bs + 7}
			files := map[string][]byte{}
			for i, n := range sizes {
				name := fmt.Sprintf("f%d.bin", i)
				files[name] = randomBytes(n, uint64(n))
				if err := os.WriteFile(filepath.Join(root, name), files[name], 0o644); err != nil {
					t.Fatal(err)
				}
			}
			base := startCaddy(t, fmt.Sprintf("p2pxhr {\n min_size 0\n block_size %d\n}\nroot * %s\nfile_server", bs, root))
			for name, data := range files {
				res, m := fetchManifest(t, base, "/"+name)
				if m == nil {
					t.Fatalf("%s (%d bytes): status %d", name, len(data), res.StatusCode)
				}
				want := independentHashes(data, bs)
				if m.Size != int64(len(data)) || m.BlockSize != bs || len(m.Blocks) != len(want) {
					t.Fatalf("%s: size %d blockSize %d blocks %d; want %d %d %d", name, m.Size, m.BlockSize, len(m.Blocks), len(data), bs, len(want))
				}
				for i := range want {
					if m.Blocks[i] != want[i] {
						t.Fatalf("%s: block %d hash %s, want %s", name, i, m.Blocks[i], want[i])
					}
				}
				if err := m.Validate(); err != nil {
					t.Errorf("%s: %v", name, err)
				}
				if m.URL != "/"+name || m.ETag == "" || m.ContentType == "" {
					t.Errorf("%s: url %q etag %q type %q", name, m.URL, m.ETag, m.ContentType)
				}
			}
		})
	}
}

func TestManifestIDChangesWithTheBytes(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "big.bin")
	data := randomBytes(600<<10, 7)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	base := startCaddy(t, "p2pxhr\nroot * "+root+"\nfile_server")
	_, first := fetchManifest(t, base, "/big.bin")
	_, again := fetchManifest(t, base, "/big.bin")
	if first == nil || again == nil || first.ID != again.ID {
		t.Fatalf("same bytes, different manifests: %v %v", first, again)
	}
	data[len(data)-1] ^= 0xff // one byte of the last block
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	_, changed := fetchManifest(t, base, "/big.bin")
	if changed == nil || changed.ID == first.ID {
		t.Fatalf("changed bytes kept the id %s", first.ID)
	}
	if changed.Blocks[0] != first.Blocks[0] || changed.Blocks[2] == first.Blocks[2] {
		t.Errorf("only the last block changed, got blocks %v then %v", first.Blocks, changed.Blocks)
	}
}

func TestConcurrentManifestRequestsBuildOnce(t *testing.T) {
	var fullGets atomic.Int32
	release := make(chan struct{})
	data := randomBytes(1<<20, 3)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fullGets.Add(1)
		<-release // hold the build open so the other requests pile up
		w.Header().Set("ETag", `"v1"`)
		w.Write(data)
	}))
	defer upstream.Close()
	base := startCaddy(t, "p2pxhr\nreverse_proxy "+upstream.URL)

	const n = 16
	var wg sync.WaitGroup
	ids := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, m := fetchManifest(t, base, "/file.bin")
			if m != nil {
				ids[i] = m.ID
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // let every request reach the builder
	close(release)
	wg.Wait()
	for i, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("request %d got id %q, request 0 %q", i, id, ids[0])
		}
	}
	if got := fullGets.Load(); got != 1 {
		t.Errorf("origin served the full body %d times for %d concurrent manifest requests; want 1", got, n)
	}
	// A later request revalidates (304) instead of rebuilding.
	fetchManifest(t, base, "/file.bin")
	if got := fullGets.Load(); got != 1 {
		t.Errorf("revalidation downloaded the body again (%d full GETs)", got)
	}
}
