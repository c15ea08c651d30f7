package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzCookieRule checks the rule that decides whether a request's cookies
// leave it shareable: it never panics; whatever it lets through holds no
// cookie but the group cookie, by net/http's parser or by plain text; and
// any other cookie added makes the request private.
func FuzzCookieRule(f *testing.F) {
	for _, seed := range []string{"", "p2pxhr_group=p2p", "p2pxhr_group=http; p2pxhr_group=p2p", `sess={"u":"alice"}`,
		`a\b=c`, "\u00e5=1", "user[id]=7", " ; ;\t", "p2pxhr_group=p2p;sess=1", "p2pxhr_group"} {
		f.Add(seed, "x=1")
	}
	f.Fuzz(func(t *testing.T, raw, other string) {
		r := &http.Request{Header: http.Header{"Cookie": {raw}}}
		if !onlyGroupCookie(r) {
			return
		}
		for _, c := range r.Cookies() {
			if c.Name != groupCookie {
				t.Fatalf("%q passed as the group cookie alone, but holds cookie %q", raw, c.Name)
			}
		}
		rest := strings.NewReplacer("p2pxhr_group=p2p", "", "p2pxhr_group=http", "").Replace(raw)
		if strings.Trim(rest, "; \t") != "" {
			t.Fatalf("%q passed as the group cookie alone, but holds %q besides", raw, rest)
		}
		if strings.Trim(other, "; \t") != "" && !strings.HasPrefix(strings.Trim(other, "; \t"), "p2pxhr_group=") {
			r.Header.Add("Cookie", other)
			if onlyGroupCookie(r) {
				t.Fatalf("%q then %q passed as the group cookie alone", raw, other)
			}
		}
	})
}

// FuzzManifestURL checks the manifest route's URL normaliser: it never
// panics; what it accepts is an absolute path without dot segments; its
// normal form is a fixed point; and normalising never changes what the URL
// means (the decoded path and query stay the same).
func FuzzManifestURL(f *testing.F) {
	for _, seed := range []string{"/f.bin", "/%66.bin", "/a%2fb", "/caf\u00e9", "/f.bin?v=%31&x=%2f", "/%2e%2e/x",
		"http://h.test/f%2ebin", "//evil/x", "/a/./b", "/x?%zz", "/%", "/a%2"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		target, u, err := parseTarget(raw, "h.test")
		if err != nil {
			return
		}
		if !strings.HasPrefix(target, "/") || strings.HasPrefix(target, "//") {
			t.Fatalf("%q gave %q, not an absolute path", raw, target)
		}
		for _, seg := range strings.Split(u.Path, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q gave %q with a dot segment", raw, target)
			}
		}
		again, _, err := parseTarget(target, "h.test")
		if err != nil || again != target {
			t.Fatalf("%q gave %q, which gives %q, %v", raw, target, again, err)
		}
		orig, _ := url.Parse(raw)
		if u.Path != orig.Path {
			t.Fatalf("%q (path %q) gave %q (path %q)", raw, orig.Path, target, u.Path)
		}
		q1, err1 := url.QueryUnescape(orig.RawQuery)
		q2, err2 := url.QueryUnescape(u.RawQuery)
		if (err1 == nil) != (err2 == nil) || q1 != q2 {
			t.Fatalf("%q (query %q) gave %q (query %q)", raw, orig.RawQuery, target, u.RawQuery)
		}
	})
}

// FuzzRangeCacheKey checks that two versions of a resource never share a
// range-cache key: keys are equal exactly when site, request URI, ETag,
// Last-Modified and length all are, whatever bytes the fields hold.
func FuzzRangeCacheKey(f *testing.F) {
	f.Add("http://a.test", "/f.bin", `"1"`, "", int64(10), "http://a.test", "/f.bin", `"1"`, "", int64(10))
	f.Add("http://a.test", "/f.bin", `"1"`, "x", int64(10), "http://a.test", "/f.bin", `"1`, `"x`, int64(10))
	f.Add("http://a.test", "/f", "", "", int64(1), "http://a.test/f", "", "", "", int64(1))
	f.Add("http://a.test", "/f.bin\x00x", "1", "", int64(10), "http://a.test", "/f.bin", "x\x001", "", int64(10))
	f.Fuzz(func(t *testing.T, site1, uri1, etag1, lm1 string, n1 int64, site2, uri2, etag2, lm2 string, n2 int64) {
		same := site1 == site2 && uri1 == uri2 && etag1 == etag2 && lm1 == lm2 && n1 == n2
		k1, k2 := rangeCacheKey(site1, uri1, etag1, lm1, n1), rangeCacheKey(site2, uri2, etag2, lm2, n2)
		if (k1 == k2) != same {
			t.Fatalf("keys %q and %q for versions that are equal: %v", k1, k2, same)
		}
	})
}
