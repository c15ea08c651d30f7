package caddymodule

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/evanw/esbuild/pkg/api"

	"github.com/p2pxhr/p2pxhr/client"
)

// clientAsset is the browser client bundle, with a content hash that
// serves as its ETag and its cache-busting version.
type clientAsset struct {
	body    []byte
	version string
}

// The bundle depends only on the embedded sources, so it is built once per
// process however many times Caddy provisions the handler (every config
// reload does).
var (
	bundleOnce sync.Once
	bundle     *clientAsset
	bundleErr  error
)

func loadClientAsset() (*clientAsset, error) {
	bundleOnce.Do(func() {
		var body []byte
		body, bundleErr = BuildClientBundle()
		if bundleErr == nil {
			sum := sha256.Sum256(body)
			bundle = &clientAsset{body: body, version: hex.EncodeToString(sum[:8])}
		}
	})
	return bundle, bundleErr
}

// embedNamespace marks modules esbuild reads from client.Files.
const embedNamespace = "p2pxhr-embed"

// BuildClientBundle bundles and minifies the embedded ES modules into one
// IIFE for the browsers of today (es2020), reading every module from the
// embedded files through a plugin so no file on disk and no npm is needed.
func BuildClientBundle() ([]byte, error) {
	res := api.Build(api.BuildOptions{
		EntryPoints:       []string{client.Entry},
		Bundle:            true,
		Format:            api.FormatIIFE,
		Target:            api.ES2020,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		Charset:           api.CharsetUTF8,
		LegalComments:     api.LegalCommentsNone,
		Write:             false,
		Outfile:           "client.js",
		Plugins:           []api.Plugin{embedPlugin()},
		LogLevel:          api.LogLevelSilent,
	})
	if len(res.Errors) > 0 {
		msgs := make([]string, 0, len(res.Errors))
		for _, e := range res.Errors {
			loc := ""
			if e.Location != nil {
				loc = fmt.Sprintf("%s:%d: ", e.Location.File, e.Location.Line)
			}
			msgs = append(msgs, loc+e.Text)
		}
		return nil, errors.New("bundling the client: " + strings.Join(msgs, "; "))
	}
	if len(res.OutputFiles) != 1 {
		return nil, fmt.Errorf("bundling the client: %d output files, want 1", len(res.OutputFiles))
	}
	return res.OutputFiles[0].Contents, nil
}

// embedPlugin resolves the entry and relative imports to paths inside
// client.Files and loads them from there; anything else is an error, so the
// bundle never depends on what happens to be on disk.
func embedPlugin() api.Plugin {
	return api.Plugin{
		Name: "p2pxhr-embed",
		Setup: func(b api.PluginBuild) {
			b.OnResolve(api.OnResolveOptions{Filter: ".*"}, func(a api.OnResolveArgs) (api.OnResolveResult, error) {
				p := a.Path
				if a.Kind != api.ResolveEntryPoint {
					if !strings.HasPrefix(p, "./") && !strings.HasPrefix(p, "../") {
						return api.OnResolveResult{}, fmt.Errorf("client modules import only relative paths, not %q", p)
					}
					p = path.Join(path.Dir(a.Importer), p)
				}
				return api.OnResolveResult{Path: p, Namespace: embedNamespace}, nil
			})
			b.OnLoad(api.OnLoadOptions{Filter: ".*", Namespace: embedNamespace}, func(a api.OnLoadArgs) (api.OnLoadResult, error) {
				src, err := client.Files.ReadFile(a.Path)
				if err != nil {
					return api.OnLoadResult{}, err
				}
				s := string(src)
				return api.OnLoadResult{Contents: &s, Loader: api.LoaderJS}, nil
			})
		},
	}
}

// serve answers GET {prefix}client.js. A request naming the current
// version (?v=...) may be cached for a year; others revalidate by ETag.
func (c *clientAsset) serve(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeJSONError(w, http.StatusMethodNotAllowed, "client.js answers GET only")
	}
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("ETag", `"`+c.version+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	if r.URL.Query().Get("v") == c.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=300")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(c.body))
	return nil
}
