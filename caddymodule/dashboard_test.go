package caddymodule

import (
	"bytes"
	"testing"
)

func TestDashboardIsOffUnlessConfigured(t *testing.T) {
	base := startCaddy(t, "p2pxhr\nrespond \"site\"")
	if _, body := get(t, base+"/_p2pxhr/dashboard"); string(body) != "site" {
		t.Errorf("dashboard served without the dashboard option: %.80s", body)
	}
}

func TestDashboardServesItsPageAndAssets(t *testing.T) {
	base := startCaddy(t, "p2pxhr {\n dashboard\n}\nrespond \"site\"")
	for route, want := range map[string]string{
		"/_p2pxhr/dashboard":     "<svg id=\"chartOffload\"",
		"/_p2pxhr/dashboard.js":  "dashboardUpdates",
		"/_p2pxhr/dashboard.css": "--peers",
		"/_p2pxhr/dashboard.svg": "<svg",
	} {
		res, body := get(t, base+route)
		if res.StatusCode != 200 || !bytes.Contains(body, []byte(want)) {
			t.Errorf("%s: status %d, body lacks %q", route, res.StatusCode, want)
		}
		if res.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: no CSP", route)
		}
	}
}
