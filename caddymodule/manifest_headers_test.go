package caddymodule

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSharedResponseHeaders(t *testing.T) {
	h := http.Header{
		"Content-Type":      {"text/plain; charset=iso-8859-1"},
		"X-Multi":           {"one", "two"},
		"Date":              {"Sun, 29 Nov 2026 21:58:15 GMT"},
		"Age":               {"12"},
		"Set-Cookie":        {"a=1"},
		"Connection":        {"keep-alive, X-Hop"},
		"X-Hop":             {"only for this connection"},
		"Keep-Alive":        {"timeout=5"},
		"Transfer-Encoding": {"chunked"},
		"Content-Length":    {"65536"},
		"X-Huge":            {strings.Repeat("x", maxSharedHeaderValue+1)},
		"x-lower":           {"set without canonicalising"},
		"X-Lower":           {"and canonically"},
	}
	want := map[string]string{
		"content-type":   "text/plain; charset=iso-8859-1",
		"x-multi":        "one, two",
		"content-length": "65536",
		"x-lower":        "and canonically, set without canonicalising",
	}
	if got := sharedResponseHeaders(h); !maps.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if got := sharedResponseHeaders(http.Header{"Date": {"x"}}); got != nil {
		t.Errorf("nothing to share: got %v, want nil (no field in the JSON)", got)
	}

	many := http.Header{}
	for i := range 100 {
		many.Set(fmt.Sprintf("X-H%03d", i), strings.Repeat("v", 1000))
	}
	got := sharedResponseHeaders(many)
	total := 0
	for k, v := range got {
		total += len(k) + len(v)
	}
	if total > maxSharedHeaders || len(got) == 0 {
		t.Errorf("%d headers of %d bytes in all; want some, at most %d bytes", len(got), total, maxSharedHeaders)
	}
}

// TestManifestCarriesTheOriginsHeaders: a manifest built through a real
// Caddy has the headers a browser would read from the origin's response.
func TestManifestCarriesTheOriginsHeaders(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "f.bin"), randomBytes(100<<10, 7), 0o644); err != nil {
		t.Fatal(err)
	}
	base := startCaddy(t, fmt.Sprintf(`p2pxhr {
	min_size 0
}
header /f.bin {
	Content-Disposition "attachment; filename=\"f.bin\""
	+X-Multi one
	+X-Multi two
	Content-Type "text/plain; charset=iso-8859-1"
}
root * %s
file_server`, root))
	res, m := fetchManifest(t, base, "/f.bin")
	if m == nil {
		t.Fatalf("status %d", res.StatusCode)
	}
	direct, _ := get(t, base+"/f.bin")
	for _, name := range []string{"Content-Disposition", "X-Multi", "Content-Type", "Content-Length", "Etag", "Last-Modified", "Accept-Ranges", "Server"} {
		want := strings.Join(direct.Header.Values(name), ", ")
		if got := m.Headers[strings.ToLower(name)]; got != want || want == "" {
			t.Errorf("manifest header %s = %q; the origin sends %q", name, got, want)
		}
	}
	if _, ok := m.Headers["date"]; ok {
		t.Errorf("manifest carries date %q: a response-time header", m.Headers["date"])
	}
	for k := range m.Headers {
		if k != strings.ToLower(k) {
			t.Errorf("header name %q is not lowercase", k)
		}
	}
}
