package caddymodule

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// loadError adapts a site block and provisions it as `caddy validate`
// does, returning the first error of either step.
func loadError(t *testing.T, siteBody string) error {
	t.Helper()
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte("{\n\tadmin off\n}\nhttp://127.0.0.1:1 {\n"+siteBody+"\n}\n"), nil)
	if err != nil {
		return err
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

// siteWithDownloads is a directory with a page and a shareable file inside
// and outside /downloads.
func siteWithDownloads(t *testing.T) string {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "downloads"), 0o755)
	os.WriteFile(filepath.Join(root, "index.html"), []byte("<!doctype html><html><head><title>t</title></head><body>hi</body></html>"), 0o644)
	os.WriteFile(filepath.Join(root, "downloads", "big.bin"), randomBytes(300<<10, 1), 0o644)
	os.WriteFile(filepath.Join(root, "other.bin"), randomBytes(300<<10, 2), 0o644)
	return root
}

// A matcher on the directive's line says what may be shared; the module's
// routes and the pages outside it keep working.
func TestMatcherFirstSpellingLimitsSharing(t *testing.T) {
	for name, site := range map[string]string{
		"path token":    "p2pxhr /downloads/*",
		"named matcher": "@dl path /downloads/*\np2pxhr @dl",
	} {
		t.Run(name, func(t *testing.T) {
			root := siteWithDownloads(t)
			base := startCaddy(t, site+"\nroot * "+root+"\nfile_server")
			if res, _ := get(t, base+"/_p2pxhr/client.js"); res.StatusCode != 200 {
				t.Errorf("client.js: %d", res.StatusCode)
			}
			if _, body := get(t, base+"/index.html"); !bytes.Contains(body, []byte("/_p2pxhr/client.js")) {
				t.Errorf("the page got no client tag: %s", body)
			}
			if res, m := fetchManifest(t, base, "/downloads/big.bin"); m == nil {
				t.Errorf("manifest of /downloads/big.bin: %d", res.StatusCode)
			}
			if res, _ := fetchManifest(t, base, "/other.bin"); res.StatusCode != 403 {
				t.Errorf("manifest of /other.bin outside the matcher: %d, want 403", res.StatusCode)
			}
		})
	}
}

// Spellings that cannot work are refused with what to write instead.
func TestSpellingsThatHideTheModuleAreRefused(t *testing.T) {
	for name, tc := range map[string]struct{ site, want string }{
		"inside handle":       {"handle /downloads/* {\n\tp2pxhr\n}\nfile_server", "p2pxhr { paths /downloads/* }"},
		"inside route":        {"route /downloads/* {\n\tp2pxhr\n\tfile_server\n}", "path /downloads/*"},
		"header matcher":      {"@h header X-A b\np2pxhr @h\nfile_server", "limit sharing inside the block"},
		"matcher and paths":   {"p2pxhr /downloads/* {\n\tpaths *.bin\n}\nfile_server", "give the patterns once"},
		"matcher and a value": {"p2pxhr /downloads/* /x\nfile_server", "no arguments"},
	} {
		t.Run(name, func(t *testing.T) {
			err := loadError(t, tc.site)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// Wrappers without a matcher, or with one the module's routes pass, are
// fine.
func TestSpellingsThatKeepTheModuleReachable(t *testing.T) {
	for _, site := range []string{
		"handle {\n\tp2pxhr\n\tfile_server\n}",
		"route {\n\tp2pxhr\n\tfile_server\n}",
		"route /_p2pxhr/* {\n\tp2pxhr\n}\nfile_server",
		"p2pxhr *\nfile_server",
	} {
		if err := loadError(t, site); err != nil {
			t.Errorf("%q: %v", site, err)
		}
	}
}

// jsonLoadError provisions a site whose only route handler is the given
// JSON, as `caddy validate` does.
func jsonLoadError(t *testing.T, handler string) error {
	t.Helper()
	raw := `{"admin":{"disabled":true},"apps":{"http":{"servers":{"s":{"listen":["127.0.0.1:1"],"routes":[{"handle":[` + handler + `]}]}}}}}`
	var cfg caddy.Config
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}
