package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// sloppyApp ignores Range and answers each visitor with a body of its own
// chosen by pick, under one ETag, Last-Modified and length for everyone:
// an application that personalises a download and derives its validators
// from the template. Only the module's own rules can keep the bodies apart.
type sloppyApp struct {
	bodies map[string][]byte
	pick   func(r *http.Request) string
	vary   string
}

func (a sloppyApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := a.bodies[a.pick(r)]
	w.Header().Set("ETag", `"template-7"`)
	w.Header().Set("Last-Modified", "Thu, 01 Jan 2026 00:00:00 GMT")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	if a.vary != "" {
		w.Header().Set("Vary", a.vary)
	}
	w.Write(body)
}

func TestCookiesNetHTTPCannotParseStayPrivate(t *testing.T) {
	const size = 400 << 10
	bodies := map[string][]byte{"alice": randomBytes(size, 51), "other": randomBytes(size, 52)}
	app := sloppyApp{bodies: bodies, pick: func(r *http.Request) string {
		if strings.Contains(r.Header.Get("Cookie"), "alice") {
			return "alice"
		}
		return "other"
	}}
	upstream := httptest.NewServer(app)
	defer upstream.Close()
	base := startCaddy(t, "p2pxhr\nreverse_proxy "+upstream.URL)

	for i, cookie := range []string{
		`sess={"u":"alice"}`,
		`sess=al\ice`,
		"sess=\"\u00e5lice\"",
		`user[id]=alice`,
		`p2pxhr_group=p2p; sess={"u":"alice"}`,
	} {
		t.Run(cookie, func(t *testing.T) {
			url := fmt.Sprintf("%s/f%d.bin", base, i) // a cache entry of its own
			// Alice asks for a range with a cookie Go's parser drops...
			res, body := get(t, url, "Range", "bytes=0-999", "Cookie", cookie)
			if res.StatusCode == http.StatusPartialContent && !bytes.Equal(body, bodies["alice"][:1000]) {
				t.Fatalf("alice got someone else's bytes")
			}
			// ...and nobody else may then be answered from her copy.
			for _, other := range []string{"", `sess={"u":"bob"}`, "p2pxhr_group=http"} {
				hdr := []string{"Range", "bytes=0-999"}
				if other != "" {
					hdr = append(hdr, "Cookie", other)
				}
				res, body := get(t, url, hdr...)
				want := bodies["other"]
				if res.StatusCode == http.StatusPartialContent {
					want = want[:1000]
				}
				if !bytes.Equal(body, want) {
					t.Fatalf("a visitor with cookie %q got alice's body (status %d)", other, res.StatusCode)
				}
			}
		})
	}
}

func TestCookieRuleReadsTheRawHeader(t *testing.T) {
	for _, c := range []struct {
		headers []string
		shared  bool
	}{
		{nil, true},
		{[]string{""}, true},
		{[]string{"p2pxhr_group=p2p"}, true},
		{[]string{"p2pxhr_group=http", "p2pxhr_group=p2p"}, true},
		{[]string{" p2pxhr_group=p2p ; ;"}, true},
		{[]string{"sess=1"}, false},
		{[]string{`sess={"u":"alice"}`}, false},
		{[]string{`a\b=c`}, false},
		{[]string{"\u00e5=1"}, false},
		{[]string{"user[id]=7"}, false},
		{[]string{"p2pxhr_group=p2p", "sess=1"}, false},
		{[]string{"p2pxhr_group=admin"}, false},
		{[]string{"P2PXHR_GROUP=p2p"}, false},
		{[]string{"p2pxhr_group"}, false},
		{[]string{"token"}, false},
	} {
		h := http.Header{}
		for _, v := range c.headers {
			h.Add("Cookie", v)
		}
		if got := onlyGroupCookie(&http.Request{Header: h}); got != c.shared {
			t.Errorf("Cookie %q: shared %v, want %v", c.headers, got, c.shared)
		}
	}
}

// originBytes reads the module's own count of shareable bytes let through
// (the site needs dashboard).
func originBytes(t *testing.T, base string) int64 {
	t.Helper()
	_, body := get(t, base+"/_p2pxhr/dashboard/stats")
	var s struct {
		Origin struct {
			Bytes int64 `json:"bytes"`
		} `json:"origin"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("stats: %v: %s", err, body)
	}
	return s.Origin.Bytes
}

func TestVaryOnAnotherHeaderIsNotShared(t *testing.T) {
	const size = 400 << 10
	bodies := map[string][]byte{"de": randomBytes(size, 53), "fr": randomBytes(size, 54)}
	for _, c := range []struct{ vary, header string }{
		{"Accept-Language", "Accept-Language"},
		{"accept-encoding, Accept-Language", "Accept-Language"},
		{"Origin", "Origin"},
	} {
		t.Run(c.vary, func(t *testing.T) {
			pick := func(r *http.Request) string {
				if strings.Contains(r.Header.Get(c.header), "fr") {
					return "fr"
				}
				return "de"
			}
			upstream := httptest.NewServer(sloppyApp{bodies: bodies, pick: pick, vary: c.vary})
			defer upstream.Close()
			base := startCaddy(t, "p2pxhr {\n http_rate_limit 64MiB\n dashboard\n}\nreverse_proxy "+upstream.URL)

			// German fills the range cache first; French must get French.
			for _, lang := range []string{"de", "fr", "de"} {
				res, body := get(t, base+"/f.bin", "Range", "bytes=0-999", c.header, lang)
				want := bodies[lang]
				if res.StatusCode == http.StatusPartialContent {
					want = want[:1000]
				}
				if !bytes.Equal(body, want) {
					t.Fatalf("%s: %s got another one's bytes (status %d)", c.header, lang, res.StatusCode)
				}
			}
			if n := originBytes(t, base); n != 0 {
				t.Errorf("%d bytes of a response varying by %s were paced as shareable", n, c.vary)
			}
			res, body := get(t, base+"/_p2pxhr/manifest?url=/f.bin")
			if res.StatusCode != http.StatusForbidden || !bytes.Contains(body, []byte(c.header)) {
				t.Errorf("manifest of a response varying by %s: %d %s", c.vary, res.StatusCode, body)
			}
		})
	}

	t.Run("Accept-Encoding alone is shared", func(t *testing.T) {
		one := func(*http.Request) string { return "de" }
		upstream := httptest.NewServer(sloppyApp{bodies: bodies, pick: one, vary: "Accept-Encoding"})
		defer upstream.Close()
		base := startCaddy(t, "p2pxhr\nreverse_proxy "+upstream.URL)
		if res, m := fetchManifest(t, base, "/f.bin"); m == nil {
			t.Fatalf("manifest with Vary: Accept-Encoding: status %d", res.StatusCode)
		}
	})
}
