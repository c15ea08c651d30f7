package caddymodule

import (
	"bytes"
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
