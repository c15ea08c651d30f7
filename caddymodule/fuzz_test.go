package caddymodule

import (
	"net/http"
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
