package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evanw/esbuild/pkg/api"

	"github.com/p2pxhr/p2pxhr/internal/browsertest"
	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
)

// bundleLibraries bundles jQuery and axios, as installed from npm with the
// browser driver (internal/browsertest/driver, pinned by its lockfile),
// into dir/libs.js with esbuild, for client/test/libraries.html.
func bundleLibraries(t *testing.T, dir string) {
	t.Helper()
	modules := filepath.Join(repoDir(t), "internal", "browsertest", "driver")
	for _, pkg := range []string{"jquery", "axios"} {
		if _, err := os.Stat(filepath.Join(modules, "node_modules", pkg)); err != nil {
			msg := fmt.Sprintf("%s is not installed (npm ci --prefix %s): %v", pkg, modules, err)
			if os.Getenv(browsertest.RequireEnv) == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	res := api.Build(api.BuildOptions{
		Stdin: &api.StdinOptions{
			Contents:   "import $ from 'jquery';\nimport axios from 'axios';\nwindow.$ = window.jQuery = $;\nwindow.axios = axios;\n",
			ResolveDir: modules,
			Loader:     api.LoaderJS,
		},
		Bundle:   true,
		Format:   api.FormatIIFE,
		Platform: api.PlatformBrowser,
		Target:   api.ES2020,
		Outfile:  filepath.Join(dir, "libs.js"),
		Write:    true,
		LogLevel: api.LogLevelSilent,
	})
	for _, e := range res.Errors {
		t.Errorf("bundling jQuery and axios: %s", e.Text)
	}
	if len(res.Errors) > 0 {
		t.FailNow()
	}
}

// TestLibrariesWithSwappedXHR: a page that sets window.XMLHttpRequest =
// peer5.Request and uses jQuery and axios as they come from npm gets a
// POST, a 404, a small JSON file, a shared JSON file and a shared binary
// file exactly as the native XMLHttpRequest gives them, the shared ones
// carried by peer5 and the binary one with bytes from another visitor (a
// browser of its own: a tab of the same browser would serve the file from
// the persistent cache, with no peer involved).
func TestLibrariesWithSwappedXHR(t *testing.T) {
	libs := t.TempDir()
	bundleLibraries(t, libs)
	data := t.TempDir()
	writeJSON(t, data, "big.json", 400<<10)
	writeJSON(t, data, "small.json", 2<<10)
	base := testcaddy.Start(t, fmt.Sprintf(`route {
	p2pxhr {
		inject off
		http_rate_limit 2MB/s
	}
	handle /files/* {
		p2pxhr_demo_files {
			size 4MiB
		}
	}
	handle /api/echo {
		header Content-Type application/json
		respond `+"`"+`{"posted": true}`+"`"+` 201
	}
	handle_path /data/* {
		root * %s
		file_server
	}
	handle_path /libs/* {
		root * %s
		file_server
	}
	handle {
		root * %s
		file_server
	}
}
`, data, libs, filepath.Join(repoDir(t), "client")))
	_, binSum := fileSHA256(t, base+"/files/demo.bin")
	shared := map[string]string{"big": "/data/big.json", "binary": "/files/demo.bin"}

	for _, kind := range []browsertest.Kind{browsertest.Chromium, browsertest.Firefox} {
		t.Run(string(kind), func(t *testing.T) {
			// Another visitor fetches both shared files and stays to seed them.
			seeder := browsertest.Launch(t, browsertest.Options{Kind: kind}).Open(t, base+"/test/page.html")
			for _, u := range shared {
				var d download
				seeder.Eval(t, 60*time.Second, "trace(peer5.Request, "+js(u)+", 'arraybuffer')", &d)
				if d.Status != 200 {
					t.Fatalf("seeding tab: %s status %d", u, d.Status)
				}
			}
			for _, lib := range []string{"jquery", "axios"} {
				t.Run(lib, func(t *testing.T) {
					// A browser per library: the second would find the files in the first's cache.
					page := browsertest.Launch(t, browsertest.Options{Kind: kind}).Open(t, base+"/test/libraries.html")
					defer page.Close()
					names := `["post", "missing", "small", "big", "binary"]`
					var native, swapped map[string]map[string]any
					page.Eval(t, 60*time.Second, "runLibrary("+js(lib)+", "+names+", false)", &native)
					page.Eval(t, 60*time.Second, "runLibrary("+js(lib)+", "+names+", true)", &swapped)
					for name, want := range native {
						if got := swapped[name]; !reflect.DeepEqual(got, want) {
							g, _ := json.Marshal(got)
							w, _ := json.Marshal(want)
							t.Errorf("%s with peer5.Request:\n got %s\nwant %s (native)", name, g, w)
						}
					}
					if sum := fmt.Sprint(swapped["binary"]["data"]); !strings.Contains(sum, binSum) {
						t.Errorf("binary data %s, want sha %s", sum, binSum)
					}
					for name, u := range shared {
						var st struct {
							State     string `json:"state"`
							FromHTTP  int64  `json:"bytesFromHttp"`
							FromPeers int64  `json:"bytesFromPeers"`
						}
						page.Eval(t, 10*time.Second, "peer5.stats("+js(u)+")", &st)
						t.Logf("%s %s: %s, %d bytes from HTTP, %d from peers", lib, name, st.State, st.FromHTTP, st.FromPeers)
						if st.State != "ok" {
							t.Errorf("%s %s: peer5.stats %+v; want carried by peer5 (ok)", lib, name, st)
						}
						// 4 MiB at 2MB/s: the other visitor has every block long before HTTP could.
						if name == "binary" && st.FromPeers <= 0 {
							t.Errorf("%s %s: no bytes from the other visitor (%+v)", lib, name, st)
						}
					}
				})
			}
		})
	}
}
