package caddymodule

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rangeCase is one Range request and the bytes it must return.
type rangeCase struct {
	header     string
	start, end int // inclusive
}

var rangeCases = []rangeCase{
	{"bytes=0-0", 0, 0},
	{"bytes=0-99", 0, 99},
	{"bytes=262144-524287", 262144, 524287},
	{"bytes=700000-", 700000, 799999},
	{"bytes=-10", 799990, 799999},
}

func checkRanges(t *testing.T, url string, data []byte) {
	t.Helper()
	for _, rc := range rangeCases {
		res, body := get(t, url, "Range", rc.header)
		if res.StatusCode != http.StatusPartialContent {
			t.Fatalf("%s: status %d, want 206", rc.header, res.StatusCode)
		}
		want := fmt.Sprintf("bytes %d-%d/%d", rc.start, rc.end, len(data))
		if got := res.Header.Get("Content-Range"); got != want {
			t.Errorf("%s: Content-Range %q, want %q", rc.header, got, want)
		}
		if !bytes.Equal(body, data[rc.start:rc.end+1]) {
			t.Errorf("%s: wrong bytes (%d bytes)", rc.header, len(body))
		}
	}
}

func TestRangesThroughFileServer(t *testing.T) {
	root := t.TempDir()
	data := randomBytes(800000, 11)
	if err := os.WriteFile(filepath.Join(root, "f.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	base := startCaddy(t, "p2pxhr\nroot * "+root+"\nfile_server")
	checkRanges(t, base+"/f.bin", data)
}

// rangeIgnoringOrigin behaves like python's http.server: it sends the
// whole body with 200 whatever Range says, and can change its content.
type rangeIgnoringOrigin struct {
	data    atomic.Pointer[[]byte]
	version atomic.Int32
}

func (o *rangeIgnoringOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data := *o.data.Load()
	w.Header().Set("ETag", fmt.Sprintf(`"v%d"`, o.version.Load()))
	w.Header().Set("Last-Modified", time.Date(2026, 1, 1, 0, 0, int(o.version.Load()), 0, time.UTC).Format(http.TimeFormat))
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.Write(data)
}

func TestRangesWhenUpstreamIgnoresRange(t *testing.T) {
	origin := &rangeIgnoringOrigin{}
	data := randomBytes(800000, 12)
	origin.data.Store(&data)
	upstream := httptest.NewServer(origin)
	defer upstream.Close()
	base := startCaddy(t, "p2pxhr\nreverse_proxy "+upstream.URL)

	checkRanges(t, base+"/f.bin", data)

	t.Run("If-Range with the current validator gets the range", func(t *testing.T) {
		res, body := get(t, base+"/f.bin", "Range", "bytes=10-19", "If-Range", `"v0"`)
		if res.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[10:20]) {
			t.Fatalf("status %d, %d bytes", res.StatusCode, len(body))
		}
	})
	t.Run("If-Range with a stale validator gets the whole new body", func(t *testing.T) {
		changed := randomBytes(800000, 13)
		origin.data.Store(&changed)
		origin.version.Store(1)
		res, body := get(t, base+"/f.bin", "Range", "bytes=10-19", "If-Range", `"v0"`)
		if res.StatusCode != http.StatusOK || !bytes.Equal(body, changed) {
			t.Fatalf("status %d with %d bytes; want 200 with the whole new body", res.StatusCode, len(body))
		}
		checkRanges(t, base+"/f.bin", changed)
	})
}

func TestRangeCacheOffStillAnswersCorrectly(t *testing.T) {
	origin := &rangeIgnoringOrigin{}
	data := randomBytes(800000, 14)
	origin.data.Store(&data)
	upstream := httptest.NewServer(origin)
	defer upstream.Close()
	base := startCaddy(t, "p2pxhr {\n cache_size off\n}\nreverse_proxy "+upstream.URL)
	res, body := get(t, base+"/f.bin", "Range", "bytes=0-9")
	// Without the cache the origin's full 200 passes through: still correct HTTP.
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("status %d, %d bytes", res.StatusCode, len(body))
	}
}

func TestRangeCacheIsBounded(t *testing.T) {
	c, err := newRangeCache(t.TempDir(), 1000, nopLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for i := range 5 {
		f, err := c.create(400)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(make([]byte, 400))
		c.commit(fmt.Sprint(i), f, 400)
		f.Close()
	}
	if c.total > 1000 {
		t.Errorf("cache holds %d bytes, bound 1000", c.total)
	}
	if _, ok := c.open("0"); ok {
		t.Error("oldest copy still cached")
	}
	if f, ok := c.open("4"); !ok {
		t.Error("newest copy evicted")
	} else {
		f.Close()
	}
	copies, _ := filepath.Glob(filepath.Join(c.dir, "fill-*"))
	if len(copies) != 2 {
		t.Errorf("%d copies on disk, want 2", len(copies))
	}

	// Copies being filled hold their room: a second fill of 600 does not
	// fit beside one, and a discarded fill gives its room back.
	f, err := c.create(600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.create(600); err != errCacheFull {
		t.Errorf("second fill of 600 in a cache of 1000: %v, want errCacheFull", err)
	}
	if c.total+c.reserved > 1000 {
		t.Errorf("%d committed + %d reserved > 1000", c.total, c.reserved)
	}
	c.discard(f, 600)
	f, err = c.create(600)
	if err != nil {
		t.Fatalf("fill after a discard: %v", err)
	}
	c.discard(f, 600)
	if c.reserved != 0 {
		t.Errorf("%d bytes still reserved", c.reserved)
	}
}

// TestRangesInFrontOfPythonHTTPServer uses the real thing the issue names:
// python's http.server, which ignores Range and sends Last-Modified only.
func TestRangesInFrontOfPythonHTTPServer(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	root := t.TempDir()
	data := randomBytes(800000, 15)
	if err := os.WriteFile(filepath.Join(root, "f.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cmd := exec.Command(python, "-m", "http.server", "--bind", "127.0.0.1", "--directory", root, fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	upstream := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if res, err := http.Get(upstream + "/f.bin"); err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("python's http.server did not start")
		}
	}
	// Python ignores Range: the module must answer the ranges itself.
	if res, _ := get(t, upstream+"/f.bin", "Range", "bytes=0-9"); res.StatusCode != http.StatusOK {
		t.Skipf("this python honours Range (status %d); nothing to test", res.StatusCode)
	}
	base := startCaddy(t, "p2pxhr\nreverse_proxy "+upstream)
	checkRanges(t, base+"/f.bin", data)
	if _, m := fetchManifest(t, base, "/f.bin"); m == nil || m.LastModified == "" {
		t.Errorf("manifest behind python: %+v", m)
	}
}

// holdLastByte ignores Range and sends every byte of a body but the last,
// then waits to be released.
type holdLastByte struct {
	data    []byte
	release chan struct{}
	freed   sync.Once
}

func (o *holdLastByte) free() { o.freed.Do(func() { close(o.release) }) }

func (o *holdLastByte) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("ETag", `"held"`)
	w.Header().Set("Content-Length", fmt.Sprint(len(o.data)))
	w.Write(o.data[:len(o.data)-1])
	w.(http.Flusher).Flush()
	select {
	case <-o.release:
		w.Write(o.data[len(o.data)-1:])
	case <-r.Context().Done():
	}
}

// diskBytes adds up the sizes of the files under dir.
func diskBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// Copies being filled count against cache_size: three fills of 800 KB at
// once must not put 2.4 MB on the disk of a 1 MiB cache.
func TestRangeCacheFillsInFlightCountAgainstItsSize(t *testing.T) {
	dataDir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", dataDir)
	const size = 800_000
	origin := &holdLastByte{data: randomBytes(size, 16), release: make(chan struct{})}
	upstream := httptest.NewServer(origin)
	defer upstream.Close()
	defer origin.free()
	base := startCaddy(t, "p2pxhr {\n cache_size 1MiB\n}\nreverse_proxy "+upstream.URL)

	var received atomic.Int64
	done := make(chan error, 3)
	for i := range 3 {
		go func() {
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/f%d.bin", base, i), nil)
			req.Header.Set("Range", "bytes=0-99")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- err
				return
			}
			defer res.Body.Close()
			n, err := io.Copy(io.Discard, counting{&received, res.Body})
			if res.StatusCode == http.StatusOK && n != size {
				err = fmt.Errorf("a passed-through answer had %d bytes: %v", n, err)
			}
			done <- err
		}()
	}
	// Each request has all but the last byte, on disk or at the client.
	cache := filepath.Join(dataDir, "caddy", "p2pxhr", "ranges")
	deadline := time.Now().Add(30 * time.Second)
	for diskBytes(cache)+received.Load() < 3*(size-1) {
		if time.Now().After(deadline) {
			t.Fatalf("stuck at %d bytes on disk and %d at the clients", diskBytes(cache), received.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := diskBytes(cache); n > 1<<20 {
		t.Errorf("%d bytes on disk for a 1 MiB cache while copies were being filled", n)
	}
	origin.free()
	for range 3 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// counting adds what it reads to n.
type counting struct {
	n *atomic.Int64
	r io.Reader
}

func (c counting) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}
