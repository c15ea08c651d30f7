package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeOrigin answers each path with the headers and status the error
// table needs.
func fakeOrigin() *httptest.Server {
	big := make([]byte, 300<<10)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("ETag", `"x"`)
		switch r.URL.Path {
		case "/ok.bin", "/downloads/ok.bin":
		case "/cookie.bin":
			h.Set("Set-Cookie", "session=1")
		case "/private.bin":
			h.Set("Cache-Control", "private, max-age=60")
		case "/nostore.bin":
			h.Set("Cache-Control", "no-store")
		case "/small.bin":
			w.Write(big[:1000])
			return
		case "/huge.bin":
			w.Write(make([]byte, 2<<20))
			return
		case "/novalidator.bin":
			h.Del("ETag")
		case "/fail.bin":
			w.WriteHeader(http.StatusInternalServerError)
			return
		case "/auth.bin":
			w.WriteHeader(http.StatusUnauthorized)
			return
		default:
			http.NotFound(w, r)
			return
		}
		w.Write(big)
	}))
}

func TestManifestErrors(t *testing.T) {
	origin := fakeOrigin()
	defer origin.Close()
	base := startCaddy(t, "p2pxhr {\n paths /downloads/* /ok.bin /cookie.bin /private.bin /nostore.bin /small.bin /huge.bin /novalidator.bin /fail.bin /auth.bin /missing.bin\n max_size 1MiB\n}\nreverse_proxy "+origin.URL)
	host := strings.TrimPrefix(base, "http://")
	tests := []struct {
		name   string
		query  string // raw query after manifest?
		status int
		reason string
	}{
		{"ok", "url=/ok.bin", 200, ""},
		{"ok under a pattern", "url=/downloads/ok.bin", 200, ""},
		{"absolute URL to this site", "url=" + url.QueryEscape(base+"/ok.bin"), 200, ""},
		{"missing url", "", 400, "missing url"},
		{"other host", "url=" + url.QueryEscape("http://example.com/ok.bin"), 400, "not on this site"},
		{"other scheme", "url=" + url.QueryEscape("ftp://"+host+"/ok.bin"), 400, "not on this site"},
		{"dot dot", "url=/downloads/../ok.bin", 400, ".. segments"},
		{"encoded dot dot", "url=/downloads/%2e%2e/ok.bin", 400, ".. segments"},
		{"relative", "url=ok.bin", 400, "absolute path"},
		{"too long", "url=/" + strings.Repeat("a", 3000), 400, "longer than"},
		{"control character", "url=" + url.QueryEscape("/ok.bin\n"), 400, "control character"},
		{"own route", "url=/_p2pxhr/client.js", 400, "own routes"},
		{"nothing there", "url=/missing.bin", 404, "has nothing"},
		{"set-cookie", "url=/cookie.bin", 403, "sets a cookie"},
		{"private", "url=/private.bin", 403, "private"},
		{"no-store", "url=/nostore.bin", 403, "no-store"},
		{"not in paths", "url=/elsewhere.bin", 403, "not in the configured paths"},
		{"smaller than min_size", "url=/small.bin", 403, "smaller than min_size"},
		{"larger than max_size", "url=/huge.bin", 403, "larger than max_size"},
		{"no validator", "url=/novalidator.bin", 403, "neither ETag nor Last-Modified"},
		{"origin fails", "url=/fail.bin", 502, "failed with status 500"},
		{"origin wants auth", "url=/auth.bin", 403, "requires authorization"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, body := get(t, base+"/_p2pxhr/manifest?"+tc.query)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if tc.status == 200 {
				return
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var e struct {
				Error  string `json:"error"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Status != tc.status {
				t.Fatalf("error body %q is not the JSON error (%v)", body, err)
			}
			if !strings.Contains(e.Error, tc.reason) {
				t.Errorf("reason %q does not mention %q", e.Error, tc.reason)
			}
		})
	}
	t.Run("POST", func(t *testing.T) {
		res, err := http.Post(base+"/_p2pxhr/manifest?url=/ok.bin", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST got %d, want 405", res.StatusCode)
		}
	})
}

// Spellings of one URL that differ only in percent-encoding are one
// resource (RFC 3986 §6.2.2): one manifest, one build, one cache entry.
func TestManifestURLSpellingsShareOneBuild(t *testing.T) {
	var fullGets atomic.Int32
	data := randomBytes(400<<10, 71)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/files/f.bin" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fullGets.Add(1)
		w.Header().Set("ETag", `"v1"`)
		w.Write(data)
	}))
	defer upstream.Close()
	base := startCaddy(t, "p2pxhr\nreverse_proxy "+upstream.URL)

	var ids []string
	for _, spelling := range []string{"/files/f.bin", "/files/%66.bin", "/%66iles/f%2Ebin", "/files/f%2ebin", "/%66%69%6c%65%73/f.bin"} {
		res, m := fetchManifest(t, base, url.QueryEscape(spelling))
		if m == nil {
			t.Fatalf("%s: status %d", spelling, res.StatusCode)
		}
		if m.URL != "/files/f.bin" {
			t.Errorf("%s: manifest url %q, want the normal form /files/f.bin", spelling, m.URL)
		}
		ids = append(ids, m.ID)
	}
	if n := fullGets.Load(); n != 1 {
		t.Errorf("the origin streamed the file %d times for 5 spellings of one URL; want 1", n)
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("spellings got different manifests: %v", ids)
		}
	}
	// Reserved characters keep their encoding: %2F is not a slash to
	// every origin, so it is a resource of its own here.
	if _, m := fetchManifest(t, base, url.QueryEscape("/files%2ff.bin")); m == nil || m.URL != "/files%2Ff.bin" {
		t.Errorf("/files%%2ff.bin: manifest %+v, want one for /files%%2Ff.bin", m)
	}
}

func TestParseTargetNormalises(t *testing.T) {
	for _, c := range []struct{ raw, want string }{
		{"/f.bin", "/f.bin"},
		{"/%66.bin", "/f.bin"},
		{"/a%2fb", "/a%2Fb"},
		{"/caf%c3%a9", "/caf%C3%A9"},
		{"/caf\u00e9", "/caf%C3%A9"},
		{"/a%7eb%2D", "/a~b-"},
		{"/a%21", "/a%21"},
		{"/f.bin?v=%31&x=%2f", "/f.bin?v=1&x=%2F"},
		{"/f.bin?a+b", "/f.bin?a+b"},
		{"http://h.test/f%2ebin", "/f.bin"},
	} {
		got, _, err := parseTarget(c.raw, "h.test")
		if err != nil || got != c.want {
			t.Errorf("parseTarget(%q) = %q, %v; want %q", c.raw, got, err, c.want)
		}
	}
	for _, raw := range []string{"/%2e%2e/f", "/a/%2E/f", "/a/.%2e/f", "%2f", "///", "/a//", "//evil/x"} {
		if got, _, err := parseTarget(raw, "h.test"); err == nil {
			t.Errorf("parseTarget(%q) = %q; want a refusal", raw, got)
		}
	}
}
