package caddymodule

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
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

func TestExampleCaddyfileServesTheDemo(t *testing.T) {
	raw, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := strings.ReplaceAll(string(raw), "http://localhost:8080", base)
	cfg = strings.Replace(cfg, "root * client/demo", "root * ../client/demo", 1)
	cfg = strings.Replace(cfg, "{\n\tauto_https off\n}\n", testcaddy.GlobalOptions(), 1)
	if !strings.Contains(cfg, "admin off") || !strings.Contains(cfg, base) {
		t.Fatal("the example no longer has the site address this test rewrites")
	}
	startCaddyfile(t, cfg, base)

	for _, page := range []string{"/", "/image.html", "/download.html", "/auto.html"} {
		res, body := get(t, base+page)
		// The pages carry no tag of their own: the module injects it.
		if res.StatusCode != 200 || !bytes.Contains(body, []byte("/_p2pxhr/client.js?v=")) {
			t.Errorf("%s: status %d, client tag present: %v", page, res.StatusCode, bytes.Contains(body, []byte("client.js")))
		}
		// Every script the page loads must exist.
		for _, m := range regexp.MustCompile(`src="(/[^"]+)"`).FindAllSubmatch(body, -1) {
			if res, _ := get(t, base+string(m[1])); res.StatusCode != 200 {
				t.Errorf("%s loads %s: status %d", page, m[1], res.StatusCode)
			}
		}
	}
	for _, file := range []string{"/files/demo.bin", "/files/picture.png"} {
		res, m := fetchManifest(t, base, file)
		if m == nil {
			t.Fatalf("%s: manifest status %d", file, res.StatusCode)
		}
		if m.Size < 1<<20 {
			t.Errorf("%s is only %d bytes; the demo needs a large file", file, m.Size)
		}
	}
	// The generated file is the same on every start: its manifest id is fixed.
	_, m := fetchManifest(t, base, "/files/demo.bin")
	const want = "37d8f82fc9677d2772ee68eddfb3c0a5777ba841919b7dc801826cea362d3695"
	if m.ID != want {
		t.Errorf("demo.bin id %s, want %s: generation is not deterministic", m.ID, want)
	}
	res, body := get(t, base+"/files/demo.bin", "Range", "bytes=1000-1999")
	if res.StatusCode != 206 || len(body) != 1000 {
		t.Errorf("range of the demo file: %d, %d bytes", res.StatusCode, len(body))
	}
}
