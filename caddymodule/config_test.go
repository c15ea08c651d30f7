package caddymodule

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestDashboardTakesOnOrOff(t *testing.T) {
	for input, want := range map[string]bool{
		"p2pxhr {\n dashboard\n}":     true,
		"p2pxhr {\n dashboard on\n}":  true,
		"p2pxhr {\n dashboard off\n}": false,
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil || h.Dashboard != want {
			t.Errorf("%q: dashboard %v, %v", input, h.Dashboard, err)
		}
	}
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("p2pxhr {\n dashboard yes\n}")); err == nil || !strings.Contains(err.Error(), "on or off") {
		t.Errorf("dashboard yes: %v", err)
	}
}

// Out-of-range values are errors of the Caddyfile line, in its words, not
// of a Go field found later.
func TestRangeErrorsNameTheSubdirectiveAndLine(t *testing.T) {
	for input, want := range map[string][]string{
		"p2pxhr {\n\tab 50\n\tmax_neighbours 100\n}": {"Testfile:3", "max_neighbours", "1 to 64"},
		"p2pxhr {\n\tblock_size 8MiB\n}":             {"Testfile:2", "block_size", "16KiB..4MiB"},
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %v lacks %q", input, err, w)
			}
		}
	}
	// The same value in JSON fails at provision, named as in the config.
	err := loadError(t, "p2pxhr\nrespond ok")
	if err != nil {
		t.Fatal(err)
	}
	err = jsonLoadError(t, `{"handler":"p2pxhr","max_neighbours":100}`)
	if err == nil || !strings.Contains(err.Error(), "max_neighbours 100") || strings.Contains(err.Error(), "MaxNeighbours") {
		t.Errorf("JSON max_neighbours 100: %v", err)
	}
}

// {env.X} placeholders work where secrets and per-deployment values go.
func TestEnvPlaceholdersInICEServersAndOrigins(t *testing.T) {
	t.Setenv("P2PXHR_TEST_TURN", "turn:turn.example.org:3478")
	t.Setenv("P2PXHR_TEST_SECRET", "s3cret")
	t.Setenv("P2PXHR_TEST_ORIGIN", "https://www.example.org")
	origin := pageOrigin(t)
	defer origin.Close()
	base := startCaddy(t, "p2pxhr {\n ice_server {env.P2PXHR_TEST_TURN} user {env.P2PXHR_TEST_SECRET}\n allowed_origins {env.P2PXHR_TEST_ORIGIN}\n}\nreverse_proxy "+origin.URL)
	ice := welcomeICE(t, base)
	found := false
	for _, s := range ice {
		found = found || slices.Contains(s.URLs, "turn:turn.example.org:3478") && s.Username == "user" && s.Credential == "s3cret"
	}
	if !found {
		t.Errorf("the welcome does not carry the expanded ICE server: %+v", ice)
	}
	// A report from the allowed origin passes the origin check (and is
	// refused for its unknown swarm, 400); any other origin gets 403.
	if status := postReport(t, base, unknownSwarmReport, "Origin", "https://www.example.org"); status != http.StatusBadRequest {
		t.Errorf("report from the allowed origin: %d, want 400", status)
	}
	if status := postReport(t, base, unknownSwarmReport, "Origin", "https://evil.example"); status != http.StatusForbidden {
		t.Errorf("report from another origin: %d, want 403", status)
	}
}
