package caddymodule

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
)

// The operators' figures (top resources, origin bytes, A/B results) are
// served nowhere unless the dashboard is on; client reports still arrive.
func TestStatsArePrivateWithoutTheDashboard(t *testing.T) {
	base := startCaddy(t, "p2pxhr\nrespond \"site\"")
	for _, path := range []string{"/_p2pxhr/stats", "/_p2pxhr/dashboard/stats"} {
		res, body := get(t, base+path)
		if res.StatusCode == http.StatusOK && string(body) != "site" || bytes.Contains(body, []byte("topResources")) {
			t.Errorf("GET %s without dashboard: %d %s", path, res.StatusCode, body)
		}
	}
	if status := postReport(t, base, unknownSwarmReport, "Origin", base); status != http.StatusBadRequest {
		// refused for its unknown swarm, not for the route
		t.Errorf("POST {prefix}stats: status %d, want 400 for an unknown swarm", status)
	}
}

func TestStatsAreServedBesideTheDashboard(t *testing.T) {
	base := startCaddy(t, "p2pxhr {\n dashboard\n}\nrespond \"site\"")
	res, body := get(t, base+"/_p2pxhr/dashboard/stats")
	if res.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"topResources"`)) {
		t.Errorf("GET {prefix}dashboard/stats: %d %s", res.StatusCode, body)
	}
	if res, body := get(t, base+"/_p2pxhr/stats"); res.StatusCode != http.StatusMethodNotAllowed || bytes.Contains(body, []byte("topResources")) {
		t.Errorf("GET {prefix}stats with the dashboard on: %d %s", res.StatusCode, body)
	}
}

// unknownSwarmReport is a well-formed report for a swarm the server never
// built: the route takes it and refuses it with 400.
var unknownSwarmReport = `{"swarm":"` + strings.Repeat("a", 64) + `","group":"p2p","outcome":"ok"}`

// opsHash is bcrypt("ops-secret") at the lowest cost, for a fast test.
const opsHash = "$2a$04$zOsgNGu87ibk0A1SfeBUw.BVeqvKysy9eUyT2eEcoSgM2mhW7cVKm"

// The README's example that puts the dashboard behind basic_auth protects
// every route with operators' data, and leaves client reports open.
func TestReadmeDashboardExampleProtectsTheStats(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var example string
	for _, m := range regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindAllStringSubmatch(string(raw), -1) {
		if strings.Contains(m[1], "basic_auth") && strings.Contains(m[1], "dashboard") {
			example = m[1]
		}
	}
	if example == "" {
		t.Fatal("README has no Caddyfile example with dashboard and basic_auth")
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", testcaddy.FreePort(t))
	hashes := regexp.MustCompile(`\$2a\$\S+`)
	if !strings.Contains(example, "example.com") || !hashes.MatchString(example) {
		t.Fatalf("the example no longer has the site name and hash this test replaces:\n%s", example)
	}
	cfg := strings.Replace(example, "example.com", base, 1)
	cfg = hashes.ReplaceAllLiteralString(cfg, opsHash)
	startCaddyfile(t, testcaddy.GlobalOptions()+cfg, base)

	for _, path := range []string{"/_p2pxhr/dashboard", "/_p2pxhr/dashboard.js", "/_p2pxhr/dashboard/stats", "/_p2pxhr/stats"} {
		res, body := get(t, base+path)
		if res.StatusCode == http.StatusOK || bytes.Contains(body, []byte("topResources")) {
			t.Errorf("GET %s without credentials: %d %.100s", path, res.StatusCode, body)
		}
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.SetBasicAuth("ops", "ops-secret")
		if path == "/_p2pxhr/stats" {
			continue // reports only, even for operators
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s with credentials: %d", path, res.StatusCode)
		}
	}
	if postReport(t, base, unknownSwarmReport, "Origin", base) == http.StatusUnauthorized {
		t.Error("client reports need the operators' credentials")
	}
}
