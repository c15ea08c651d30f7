package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
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
