package caddymodule

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
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
		f, err := c.create()
		if err != nil {
			t.Fatal(err)
		}
		f.Write(make([]byte, 400))
		if err := c.commit(fmt.Sprint(i), f, 400); err != nil {
			t.Fatal(err)
		}
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
	entries, _ := os.ReadDir(c.dir)
	if len(entries) != 2 {
		t.Errorf("%d files on disk, want 2", len(entries))
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
