package caddymodule

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evanw/esbuild/pkg/api"

	"github.com/p2pxhr/p2pxhr/client"
)

// clientAsset is the browser client as served: the classic bundle
// (client.js), the ES module build (client.mjs), the chunks both load on
// demand (seeder.js: the persistent cache and seeding; bridge.js: a page's
// side of service worker mode; auto.js: auto mode), their source maps and the TypeScript
// declarations, each with a content hash as its ETag. version, client.js's
// hash, makes the tag's URL change with the client; the client names its
// chunks by their own hashes. worker is the service worker's bundle, which
// each handler serves after a line of its own configuration
// (serviceworker.go).
type clientAsset struct {
	version string
	files   map[string]assetFile // by route under the prefix
	worker  []byte
}

// assetFile is one file of the client.
type assetFile struct {
	body        []byte
	contentType string
	etag        string
}

// The bundles depend only on the embedded sources, so they are built once
// per process however many times Caddy provisions the handler (every config
// reload does).
var (
	bundleOnce sync.Once
	bundle     *clientAsset
	bundleErr  error
)

func loadClientAsset() (*clientAsset, error) {
	bundleOnce.Do(func() { bundle, bundleErr = buildClientAsset() })
	return bundle, bundleErr
}

// chunks are the scripts the client loads on demand: route, entry, the
// global their exports go to, and the define that gives the client their
// version (hash).
var chunks = []struct{ name, entry, global, define string }{
	{"seeder.js", client.SeederEntry, "__p2pxhrSeeder", "__P2PXHR_SEEDER__"},
	{"bridge.js", client.BridgeEntry, "__p2pxhrBridge", "__P2PXHR_BRIDGE__"},
	{"auto.js", client.AutoEntry, "__p2pxhrAuto", "__P2PXHR_AUTO__"},
}

func buildClientAsset() (*clientAsset, error) {
	const js, types, sourceMap = "text/javascript; charset=utf-8", "application/typescript; charset=utf-8", "application/json"
	a := &clientAsset{files: map[string]assetFile{}}
	add := func(name, contentType string, body []byte) {
		sum := sha256.Sum256(body)
		a.files[name] = assetFile{body: body, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	define := map[string]string{}
	for _, c := range chunks {
		code, codeMap, err := buildClient(c.entry, api.FormatIIFE, c.name, c.global, nil)
		if err != nil {
			return nil, err
		}
		add(c.name, js, code)
		add(c.name+".map", sourceMap, codeMap)
		define[c.define] = strconv.Quote(strings.Trim(a.files[c.name].etag, `"`))
	}
	for _, b := range []struct {
		name, entry string
		format      api.Format
	}{{"client.js", client.Entry, api.FormatIIFE}, {"client.mjs", client.ModuleEntry, api.FormatESModule}} {
		code, srcMap, err := buildClient(b.entry, b.format, b.name, "", define)
		if err != nil {
			return nil, err
		}
		add(b.name, js, code)
		add(b.name+".map", sourceMap, srcMap)
	}
	worker, workerMap, err := buildWorker()
	if err != nil {
		return nil, err
	}
	a.worker = worker
	add("sw.js.map", sourceMap, workerMap)
	add("client.d.ts", types, []byte(client.Declarations))
	a.version = strings.Trim(a.files["client.js"].etag, `"`)
	return a, nil
}

// buildWorker bundles the service worker (client.WorkerEntry), a classic
// script so that a site's own worker can importScripts it. Its code runs
// where there is no window: the modules it shares with the page name the
// global scope self. The source map starts with one empty line, for the
// line of configuration served before the bundle.
func buildWorker() (code, sourceMap []byte, err error) {
	code, sourceMap, err = buildClient(client.WorkerEntry, api.FormatIIFE, "sw.js", "", map[string]string{"window": "self"})
	if err != nil {
		return nil, nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(sourceMap, &m); err != nil {
		return nil, nil, fmt.Errorf("bundling the worker: source map: %w", err)
	}
	if mappings, ok := m["mappings"].(string); ok {
		m["mappings"] = ";" + mappings
	}
	sourceMap, err = json.Marshal(m)
	return code, sourceMap, err
}

// BuildClientBundle bundles and minifies the embedded ES modules into the
// classic script every page loads (client.js), for the browsers of today
// (es2020). No file on disk and no npm is needed.
func BuildClientBundle() ([]byte, error) {
	a, err := buildClientAsset()
	if err != nil {
		return nil, err
	}
	return a.files["client.js"].body, nil
}

// BuildSeederChunk bundles the persistent cache and seeding
// (client.SeederEntry) into the script that defines __p2pxhrSeeder, which
// the client loads from {prefix}seeder.js when it needs them.
func BuildSeederChunk() ([]byte, error) {
	code, _, err := buildClient(client.SeederEntry, api.FormatIIFE, "seeder.js", "__p2pxhrSeeder", nil)
	return code, err
}

// BuildBridgeChunk bundles a page's side of service worker mode
// (client.BridgeEntry), loaded from {prefix}bridge.js when the worker asks.
func BuildBridgeChunk() ([]byte, error) {
	code, _, err := buildClient(client.BridgeEntry, api.FormatIIFE, "bridge.js", "__p2pxhrBridge", nil)
	return code, err
}

// BuildWorker bundles the service worker served at {prefix}sw.js (after
// its line of configuration).
func BuildWorker() ([]byte, error) {
	code, _, err := buildWorker()
	return code, err
}

// buildClient bundles entry from the embedded files into one minified file
// named outfile, with an external source map (sources included) that the
// file points to by name, so browsers' developer tools show the modules.
// globalName, if set, names the global the entry's exports go to; define
// replaces identifiers (the chunks' versions, for the client to load them
// by).
func buildClient(entry string, format api.Format, outfile, globalName string, define map[string]string) (code, sourceMap []byte, err error) {
	res := api.Build(api.BuildOptions{
		EntryPoints:       []string{entry},
		GlobalName:        globalName,
		Define:            define,
		Bundle:            true,
		Format:            format,
		Target:            api.ES2020,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		Charset:           api.CharsetUTF8,
		LegalComments:     api.LegalCommentsNone,
		Sourcemap:         api.SourceMapLinked,
		SourcesContent:    api.SourcesContentInclude,
		Write:             false,
		Outdir:            "/",
		EntryNames:        strings.TrimSuffix(outfile, path.Ext(outfile)),
		OutExtension:      map[string]string{".js": path.Ext(outfile)},
		Plugins:           []api.Plugin{embedPlugin()},
		LogLevel:          api.LogLevelSilent,
	})
	// A warning is a bug in the client (a class member defined twice, a
	// comparison that is always false): the embedded sources are fixed, so
	// a warning fails every build, and with it the tests.
	if problems := append(res.Errors, res.Warnings...); len(problems) > 0 {
		msgs := make([]string, 0, len(problems))
		for _, e := range problems {
			loc := ""
			if e.Location != nil {
				loc = fmt.Sprintf("%s:%d: ", e.Location.File, e.Location.Line)
			}
			msgs = append(msgs, loc+e.Text)
		}
		return nil, nil, errors.New("bundling the client: " + strings.Join(msgs, "; "))
	}
	for _, f := range res.OutputFiles {
		switch path.Base(f.Path) {
		case outfile:
			code = f.Contents
		case outfile + ".map":
			sourceMap = f.Contents
		}
	}
	if code == nil || sourceMap == nil {
		return nil, nil, fmt.Errorf("bundling the client: %d output files, want %s and its map", len(res.OutputFiles), outfile)
	}
	sourceMap, err = renameSources(sourceMap)
	return code, sourceMap, err
}

// renameSources names the map's sources by their paths in the repository
// (client/src/...) instead of esbuild's namespace:path.
func renameSources(sourceMap []byte) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(sourceMap, &m); err != nil {
		return nil, fmt.Errorf("bundling the client: source map: %w", err)
	}
	if sources, ok := m["sources"].([]any); ok {
		for i, src := range sources {
			if name, ok := src.(string); ok {
				sources[i] = "client/" + strings.TrimPrefix(name, embedNamespace+":")
			}
		}
	}
	return json.Marshal(m)
}

// embedNamespace marks modules esbuild reads from client.Files.
const embedNamespace = "p2pxhr-embed"

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

// serve answers GET {prefix}<name> for the client's files. A request
// naming the current version (?v=...) may be cached for a year; others
// revalidate by ETag.
func (c *clientAsset) serve(w http.ResponseWriter, r *http.Request, name string) error {
	f := c.files[name]
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeJSONError(w, http.StatusMethodNotAllowed, name+" answers GET only")
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("ETag", f.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if name == "client.mjs" {
		// Deno and editors that follow it find the module's types here.
		h.Set("X-TypeScript-Types", "./client.d.ts")
	}
	if v := r.URL.Query().Get("v"); v == c.version || v == strings.Trim(f.etag, `"`) {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=300")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
	return nil
}

// has reports whether name is one of the client's files.
func (c *clientAsset) has(name string) bool {
	_, ok := c.files[name]
	return ok
}
