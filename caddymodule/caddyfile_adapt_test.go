package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

var updateAdapt = flag.Bool("update-adapt", false, "rewrite the JSON half of testdata/caddyfile_adapt/*.caddyfiletest from the adapter")

// goldenSeparator splits a .caddyfiletest into its Caddyfile and the JSON
// Caddy adapts it to, as in Caddy's caddytest/integration/caddyfile_adapt.
const goldenSeparator = "\n----------\n"

// Every Caddyfile form of the directive adapts to the JSON its golden file
// holds: what an admin writes and what Caddy runs, side by side.
func TestCaddyfileAdaptsToGoldenJSON(t *testing.T) {
	files, err := filepath.Glob("testdata/caddyfile_adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".caddyfiletest"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfgText, want, ok := strings.Cut(string(raw), goldenSeparator)
			if !ok {
				t.Fatalf("no %q line between the Caddyfile and the JSON", strings.TrimSpace(goldenSeparator))
			}
			adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfgText+"\n"), map[string]any{"filename": "Caddyfile"})
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			for _, w := range warnings {
				t.Errorf("warning: %s", w.String())
			}
			var got bytes.Buffer
			if err := json.Indent(&got, adapted, "", "\t"); err != nil {
				t.Fatal(err)
			}
			if *updateAdapt {
				if err := os.WriteFile(file, []byte(cfgText+goldenSeparator+got.String()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if strings.TrimSpace(got.String()) != strings.TrimSpace(want) {
				t.Errorf("adapts to:\n%s\nwant:\n%s", got.String(), want)
			}
		})
	}
}

// Each subdirective of the block, and each backplane and turn option,
// appears in at least one golden file.
func TestGoldenFilesCoverEverySubdirective(t *testing.T) {
	files, _ := filepath.Glob("testdata/caddyfile_adapt/*.caddyfiletest")
	var caddyfiles strings.Builder
	for _, file := range files {
		raw, _ := os.ReadFile(file)
		cfgText, _, _ := strings.Cut(string(raw), goldenSeparator)
		caddyfiles.WriteString(cfgText)
	}
	backplaneOptions := "cluster, node, credentials, user, password, token, tls_ca, tls_cert, tls_key, heartbeat"
	turnOptions := "listen, realm, relay_address, quota, total"
	for _, name := range strings.Split(subdirectives+", "+backplaneOptions+", "+turnOptions, ", ") {
		if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `(\s|$)`).MatchString(caddyfiles.String()) {
			t.Errorf("no golden file uses %s", name)
		}
	}
}
