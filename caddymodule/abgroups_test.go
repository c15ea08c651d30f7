package caddymodule

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var groupAttr = regexp.MustCompile(`data-group="([a-z0-9]+)"`)

func abSite(t *testing.T, percent string) string {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "index.html"), []byte("<html><head><title>x</title></head><body>hi</body></html>"), 0o644)
	return startCaddy(t, "p2pxhr {\n ab "+percent+"\n}\nroot * "+root+"\nfile_server")
}

// visit loads the page and returns the group in its tag and the cookie set.
func visit(t *testing.T, url string, headers ...string) (group, cookie string) {
	t.Helper()
	res, body := get(t, url, headers...)
	m := groupAttr.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no group in the page: %s", body)
	}
	for _, c := range res.Cookies() {
		if c.Name == groupCookie {
			cookie = c.Value
		}
	}
	if res.Header.Get("Vary") == "" || !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Cookie") {
		t.Errorf("a page that depends on the group cookie does not say Vary: Cookie")
	}
	return string(m[1]), cookie
}

func TestABAssignsFirstVisitsByPercentage(t *testing.T) {
	base := abSite(t, "30")
	const visits = 1000
	p2p := 0
	for range visits {
		group, cookie := visit(t, base+"/")
		if cookie != group {
			t.Fatalf("tag says %q, cookie %q", group, cookie)
		}
		if group == GroupP2P {
			p2p++
		}
	}
	// Binomial(1000, 0.3): mean 300, standard deviation 14.5. ±65 is 4.5
	// deviations: a correct assigner fails this about once in 150,000 runs,
	// while 25% or 35% (off by 50) would still be caught most of the time.
	if p2p < 235 || p2p > 365 {
		t.Errorf("%d of %d first visits in the P2P group with ab 30", p2p, visits)
	}
}

func TestABReturningAndForcedVisitors(t *testing.T) {
	base := abSite(t, "50")
	for _, g := range []string{GroupP2P, GroupHTTP} {
		for range 20 {
			group, cookie := visit(t, base+"/", "Cookie", groupCookie+"="+g)
			if group != g || cookie != "" {
				t.Fatalf("returning %s visitor got group %q and cookie %q", g, group, cookie)
			}
		}
		group, cookie := visit(t, base+"/?"+forceGroupParam+"="+g, "Cookie", groupCookie+"=nonsense")
		if group != g || cookie != g {
			t.Errorf("forced by query %s: group %q cookie %q", g, group, cookie)
		}
		group, _ = visit(t, base+"/", forceGroupHeader, g)
		if group != g {
			t.Errorf("forced by header %s: group %q", g, group)
		}
	}
}

func TestWithoutABEveryoneIsP2PAndNoCookie(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "index.html"), []byte("<html><head></head><body>hi</body></html>"), 0o644)
	base := startCaddy(t, "p2pxhr\nroot * "+root+"\nfile_server")
	res, body := get(t, base+"/")
	if m := groupAttr.FindSubmatch(body); m == nil || string(m[1]) != GroupP2P {
		t.Errorf("tag group: %s", body)
	}
	if len(res.Cookies()) != 0 {
		t.Errorf("cookies set without ab: %v", res.Cookies())
	}
}

func TestGroupCookieDoesNotMakeRequestsPrivate(t *testing.T) {
	var h Handler
	r, _ := http.NewRequest(http.MethodGet, "/big.bin", nil)
	r.Header.Set("Cookie", groupCookie+"=p2p")
	if !h.requestMayShare(r) {
		t.Error("the group cookie alone made a request private")
	}
	r.Header.Set("Cookie", groupCookie+"=p2p; session=42")
	if h.requestMayShare(r) {
		t.Error("a session cookie did not make the request private")
	}
}
