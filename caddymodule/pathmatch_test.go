package caddymodule

import (
	"context"
	"encoding/json"
	"flag"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

var updatePathVectors = flag.Bool("update-path-vectors", false, "rewrite the match fields of protocol/testdata/path_match_vectors.json with Caddy's answers")

const pathVectorsFile = "../protocol/testdata/path_match_vectors.json"

type pathVectors struct {
	Comment string `json:"comment"`
	Cases   []struct {
		Patterns []string `json:"patterns"`
		Path     string   `json:"path"`
		Match    bool     `json:"match"`
	} `json:"cases"`
}

func readPathVectors(t *testing.T) pathVectors {
	t.Helper()
	raw, err := os.ReadFile(pathVectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var v pathVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// caddyPathMatch is Caddy's path matcher's answer for path as a client
// sends it.
func caddyPathMatch(t *testing.T, patterns []string, path string) bool {
	t.Helper()
	m := caddyhttp.MatchPath(append([]string(nil), patterns...))
	if err := m.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", path, nil)
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	ok, err := m.MatchWithError(r)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// The shared vectors say what Caddy's path matcher does; the client's auto
// matcher is tested against the same file in the browser.
func TestPathMatchVectors(t *testing.T) {
	v := readPathVectors(t)
	for i, c := range v.Cases {
		got := caddyPathMatch(t, c.Patterns, c.Path)
		if *updatePathVectors {
			v.Cases[i].Match = got
		} else if got != c.Match {
			t.Errorf("%q on %s: Caddy says %v, the vectors %v", c.Patterns, c.Path, got, c.Match)
		}
	}
	if *updatePathVectors {
		out, _ := json.MarshalIndent(v, "", " ")
		if err := os.WriteFile(pathVectorsFile, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// inject_exclude uses the same matcher as paths: every vector holds for it.
func TestInjectExcludeUsesCaddyPathMatching(t *testing.T) {
	v := readPathVectors(t)
	for _, c := range v.Cases {
		h := &Handler{InjectExclude: c.Patterns}
		if err := h.provisionInjectExclude(); err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", c.Path, nil)
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		if got := h.injectExcluded(r); got != c.Match {
			t.Errorf("inject_exclude %q on %s: %v, want %v", c.Patterns, c.Path, got, c.Match)
		}
	}
}

// Through Caddy: inject_exclude patterns match as in paths (a suffix
// pattern at any depth, any case), where path.Match did not.
func TestInjectExcludeMatchesLikePaths(t *testing.T) {
	origin := pageOrigin(t)
	defer origin.Close()
	base := startCaddy(t, "p2pxhr {\n inject_exclude *.html /ADMIN/*\n}\nreverse_proxy "+origin.URL)
	for _, page := range []string{"/page.html", "/docs/page.html", "/admin/tool"} {
		if _, body := get(t, base+page); string(body) != plainPage {
			t.Errorf("%s is excluded but got the tag: %.120s", page, body)
		}
	}
	if _, body := get(t, base+"/docs/page"); string(body) == plainPage {
		t.Error("/docs/page is not excluded but got no tag")
	}
}
