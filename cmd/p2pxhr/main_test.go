package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
	"github.com/p2pxhr/p2pxhr/protocol"
)

func TestBinaryCarriesThePlugin(t *testing.T) {
	for _, id := range []string{"http.handlers.p2pxhr", "http.handlers.p2pxhr_demo_files", "http.handlers.file_server", "http.handlers.reverse_proxy"} {
		if _, err := caddy.GetModule(id); err != nil {
			t.Errorf("module %s missing from the binary: %v", id, err)
		}
	}
}

func TestExampleCaddyfileAdapts(t *testing.T) {
	raw, err := os.ReadFile("../../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(raw, map[string]any{"filename": "Caddyfile.example"})
	if err != nil {
		t.Fatalf("Caddyfile.example does not adapt: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("warning: %s", w.String())
	}
	if !strings.Contains(string(cfg), `"handler":"p2pxhr"`) {
		t.Errorf("adapted example has no p2pxhr handler:\n%s", cfg)
	}
}

func TestExampleCaddyfileServesTheDemo(t *testing.T) {
	raw, err := os.ReadFile("../../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", testcaddy.FreePort(t))
	cfg := strings.ReplaceAll(string(raw), "http://localhost:8080", base)
	cfg = strings.Replace(cfg, "root * client/demo", "root * ../../client/demo", 1)
	cfg = strings.Replace(cfg, "{\n\tauto_https off\n}\n", testcaddy.GlobalOptions(), 1)
	if !strings.Contains(cfg, "admin off") || !strings.Contains(cfg, base) {
		t.Fatal("the example no longer has the site address this test rewrites")
	}
	testcaddy.StartCaddyfile(t, cfg, base)

	for _, page := range []string{"/", "/image.html", "/download.html", "/auto.html"} {
		res, body := testcaddy.Get(t, base+page)
		// The pages carry no tag of their own: the module injects it.
		if res.StatusCode != 200 || !bytes.Contains(body, []byte("/_p2pxhr/client.js?v=")) {
			t.Errorf("%s: status %d, client tag present: %v", page, res.StatusCode, bytes.Contains(body, []byte("client.js")))
		}
		// Every script the page loads must exist.
		for _, m := range regexp.MustCompile(`src="(/[^"]+)"`).FindAllSubmatch(body, -1) {
			if res, _ := testcaddy.Get(t, base+string(m[1])); res.StatusCode != 200 {
				t.Errorf("%s loads %s: status %d", page, m[1], res.StatusCode)
			}
		}
	}
	for _, file := range []string{"/files/demo.bin", "/files/picture.png"} {
		res, m := demoManifest(t, base, file)
		if m == nil {
			t.Fatalf("%s: manifest status %d", file, res.StatusCode)
		}
		if m.Size < 1<<20 {
			t.Errorf("%s is only %d bytes; the demo needs a large file", file, m.Size)
		}
	}
	// The generated file is the same on every start: its manifest id is fixed.
	_, m := demoManifest(t, base, "/files/demo.bin")
	const want = "37d8f82fc9677d2772ee68eddfb3c0a5777ba841919b7dc801826cea362d3695"
	if m.ID != want {
		t.Errorf("demo.bin id %s, want %s: generation is not deterministic", m.ID, want)
	}
	res, body := testcaddy.Get(t, base+"/files/demo.bin", "Range", "bytes=1000-1999")
	if res.StatusCode != 206 || len(body) != 1000 {
		t.Errorf("range of the demo file: %d, %d bytes", res.StatusCode, len(body))
	}
}

// demoManifest fetches the manifest of url from the demo site.
func demoManifest(t *testing.T, base, url string) (*http.Response, *protocol.Manifest) {
	t.Helper()
	res, body := testcaddy.Get(t, base+"/_p2pxhr/manifest?url="+url)
	if res.StatusCode != http.StatusOK {
		return res, nil
	}
	var m protocol.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("manifest is not JSON: %v: %s", err, body)
	}
	return res, &m
}
