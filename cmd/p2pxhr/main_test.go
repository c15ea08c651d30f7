package main

import (
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
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
