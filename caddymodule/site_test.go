package caddymodule

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClientScriptIsServedWithValidators(t *testing.T) {
	base := startCaddy(t, "p2pxhr\nrespond \"site\"")
	res, body := get(t, base+"/_p2pxhr/client.js")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("status %d type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if !bytes.Contains(body, []byte("window.peer5")) {
		t.Errorf("client.js does not define window.peer5")
	}
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	res, _ = get(t, base+"/_p2pxhr/client.js", "If-None-Match", etag)
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation got %d, want 304", res.StatusCode)
	}
	version := strings.Trim(etag, `"`)
	res, _ = get(t, base+"/_p2pxhr/client.js?v="+version)
	if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("versioned client.js Cache-Control %q, want long-lived", cc)
	}
	// Unknown routes under the prefix fall through to the site.
	_, body = get(t, base+"/_p2pxhr/unknown")
	if string(body) != "site" {
		t.Errorf("unknown route answered %q", body)
	}
}

func TestNonShareableResponsesPassUntouched(t *testing.T) {
	root := t.TempDir()
	big := randomBytes(300<<10, 21)
	os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644)
	os.WriteFile(filepath.Join(root, "page.txt"), []byte("<p>hi</p>"), 0o644)
	base := startCaddy(t, "p2pxhr {\n http_rate_limit 64KiB\n}\nheader /page.txt Set-Cookie a=b\nroot * "+root+"\nfile_server")

	res, body := get(t, base+"/page.txt")
	if string(body) != "<p>hi</p>" || res.Header.Get("Set-Cookie") != "a=b" {
		t.Errorf("small page changed: %q %v", body, res.Header)
	}
	// A request with credentials is never held back nor cached.
	start := time.Now()
	_, body = get(t, base+"/big.bin", "Cookie", "session=1")
	if !bytes.Equal(body, big) {
		t.Error("wrong bytes with credentials")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a request with credentials took %v under the rate limit", d)
	}
}

func TestHTTPRateLimitHoldsShareableResponsesBack(t *testing.T) {
	root := t.TempDir()
	data := randomBytes(1<<20, 22)
	os.WriteFile(filepath.Join(root, "f.bin"), data, 0o644)
	base := startCaddy(t, "p2pxhr {\n http_rate_limit 512KiB\n}\nroot * "+root+"\nfile_server")
	start := time.Now()
	_, body := get(t, base+"/f.bin")
	elapsed := time.Since(start)
	if !bytes.Equal(body, data) {
		t.Fatal("wrong bytes under the rate limit")
	}
	// 1 MiB at 512 KiB/s with a 64 KiB burst takes at least 1.8 s; only a
	// lower bound is asserted, so a slow machine cannot fail this.
	if elapsed < 1800*time.Millisecond {
		t.Errorf("1 MiB at 512KiB/s arrived in %v", elapsed)
	}
}
