package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/pflag"
)

// benchCmd runs `p2pxhr bench args...` in-process.
func benchCmd(t *testing.T, ctx context.Context, args ...string) cmdRun {
	t.Helper()
	r := cmdRun{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	fs := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	benchFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	r.code, r.err = runBench(ctx, fs, r.stdout, r.stderr)
	return r
}

// A tiny sweep end to end: small file, high cap, so it runs in seconds
// but still goes through Caddy, the coordinator, WebRTC and both phases.
func TestBenchEndToEndJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	plot := filepath.Join(t.TempDir(), "out.svg")
	r := benchCmd(t, ctx, "--peers", "2,3", "--size", "1MiB", "--block-size", "64KiB",
		"--origin-rate", "64MB/s", "--arrivals", "200ms", "--json", "--plot", plot, "--timeout", "50s")
	if r.code != 0 {
		t.Fatalf("exit %d: %v\nstdout:\n%s\nstderr:\n%s", r.code, r.err, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one JSON object per N, got:\n%s", r.stdout)
	}
	for i, line := range lines {
		var res map[string]any
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i, err, line)
		}
		for _, k := range []string{"peers", "size", "offload", "limit", "p2pMeanSeconds", "p2pP95Seconds",
			"httpMeanSeconds", "httpP95Seconds", "speedup", "verified"} {
			if _, ok := res[k]; !ok {
				t.Errorf("line %d lacks %q: %s", i, k, line)
			}
		}
		n := res["peers"].(float64)
		off, lim := res["offload"].(float64), res["limit"].(float64)
		if want := (n - 1) / n; lim != want {
			t.Errorf("N=%v: limit %v, want %v", n, lim, want)
		}
		if off < 0 || off > lim+1e-9 {
			t.Errorf("N=%v: offload %v outside [0, %v]", n, off, lim)
		}
		if res["verified"] != true {
			t.Errorf("N=%v: not verified: %s", n, line)
		}
		for _, k := range []string{"p2pMeanSeconds", "p2pP95Seconds", "httpMeanSeconds", "httpP95Seconds"} {
			if v := res[k].(float64); v <= 0 || v > 50 {
				t.Errorf("N=%v: %s = %v, want a few seconds at most", n, k, v)
			}
		}
		if res["p2pP95Seconds"].(float64) < res["p2pMeanSeconds"].(float64)*0.5 {
			t.Errorf("N=%v: p95 below half the mean: %s", n, line)
		}
		// The HTTP-only phase must have come whole from the origin.
		if got, want := res["httpOriginBytes"].(float64), n*res["size"].(float64); got != want {
			t.Errorf("N=%v: HTTP phase origin bytes %v, want N×size = %v", n, got, want)
		}
	}
	checkPlot(t, plot, "P2P", "HTTP only", "offload", "copies of the file")
}

// With --no-http there is no HTTP-only phase to draw: the plot compares
// P2P with the swarm floor instead of an empty "HTTP only" series.
func TestBenchNoHTTPPlot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	plot := filepath.Join(t.TempDir(), "out.svg")
	r := benchCmd(t, ctx, "--peers", "2,3", "--size", "1MiB", "--block-size", "64KiB",
		"--origin-rate", "64MB/s", "--arrivals", "200ms", "--no-http", "--json", "--plot", plot, "--timeout", "50s")
	if r.code != 0 {
		t.Fatalf("exit %d: %v\nstdout:\n%s\nstderr:\n%s", r.code, r.err, r.stdout, r.stderr)
	}
	series := checkPlot(t, plot, "P2P", "swarm floor", "offload", "copies of the file")
	for _, s := range series {
		if strings.Contains(s, "HTTP only") {
			t.Errorf("plot has an HTTP-only series %q without an HTTP phase", s)
		}
	}
}

func TestBenchTableAndChurn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := benchCmd(t, ctx, "--peers", "3", "--size", "2MiB", "--block-size", "64KiB",
		"--origin-rate", "64MB/s", "--arrivals", "0s", "--churn", "0.34", "--seed-after=false")
	if r.code != 0 {
		t.Fatalf("exit %d: %v\nstdout:\n%s\nstderr:\n%s", r.code, r.err, r.stdout, r.stderr)
	}
	out := r.stdout.String()
	for _, want := range []string{"peers  offload", "1 of 3 peers left mid-way", "true\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestBenchFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--peers", "0"}, "--peers"},
		{[]string{"--peers", "65"}, "from 1 to 64"},
		{[]string{"--peers", "2,x"}, `"x"`},
		{[]string{"--size", "lots"}, "--size"},
		{[]string{"--block-size", "1KiB"}, "--block-size"},
		{[]string{"--origin-rate", "fast"}, "--origin-rate"},
		{[]string{"--offload", "sometimes"}, "--offload"},
		{[]string{"--browsers", "0"}, "--browsers"},
		{[]string{"--busy", "-1"}, "--busy"},
		{[]string{"--browsers", "17"}, "from 1 to 16"},
		{[]string{"--browsers", "2", "--peers", "3"}, "give one"},
		{[]string{"--from-seeder", "--peers", "2"}, "--from-seeder"},
		{[]string{"--browsers", "2", "--visits", "3"}, "separate benchmarks"},
		{[]string{"--from-seeder", "--adversaries", "20%"}, "separate benchmarks"},
		{[]string{"--offload", "in_flight x"}, "--offload"},
		{[]string{"--churn", "1"}, "--churn"},
		{[]string{"--arrivals", "-1s"}, "--arrivals"},
		{[]string{"--timeout", "0s"}, "--timeout"},
		{[]string{"--peers", "64", "--size", "512MiB"}, "memory"},
		{[]string{"extra"}, "no arguments"},
	} {
		r := benchCmd(t, context.Background(), tc.args...)
		if r.code != exitUsage || r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("%q: exit %d, error %v; want exit 2 mentioning %q", tc.args, r.code, r.err, tc.want)
		}
	}
}

// Each --offload policy reaches the bench site's Caddyfile, which adapts.
func TestBenchSiteCarriesOffloadPolicy(t *testing.T) {
	for policy, want := range map[string]string{
		"":             `"http_rate_limit":8000000,`,
		"always":       `"offload":{"always":true}`,
		"off":          `"offload":{"off":true}`,
		"6MB/s":        `"offload":{"egress_rate":6000000}`,
		"in_flight 12": `"offload":{"in_flight":12}`,
	} {
		cfg := benchConfig{size: 1 << 20, blockSize: 64 << 10, originRate: 8_000_000, offload: policy}
		raw, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(benchCaddyfile("127.0.0.1:1", cfg, "")), nil)
		if err != nil {
			t.Errorf("--offload %q: %v", policy, err)
			continue
		}
		if !strings.Contains(string(raw), want) || (policy == "" && strings.Contains(string(raw), `"offload"`)) {
			t.Errorf("--offload %q: config lacks %s:\n%s", policy, want, raw)
		}
	}
}

// needChromium skips a test without Debian's Chromium, unless the
// environment requires browsers (test.sh installs them).
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		if os.Getenv("P2PXHR_REQUIRE_BROWSERS") == "1" {
			t.Fatalf("no Chromium: %v", err)
		}
		t.Skipf("no Chromium: %v", err)
	}
}

// Browsers as the visitors: two Chromium processes download through the
// module and from each other, then plainly, and the same figures come out.
func TestBenchBrowsersJSON(t *testing.T) {
	needChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := benchCmd(t, ctx, "--browsers", "2", "--size", "4MiB", "--origin-rate", "2MB/s", "--arrivals", "500ms",
		"--json", "--timeout", "170s")
	if r.code != 0 {
		t.Fatalf("exit %d: %v\nstdout:\n%s\nstderr:\n%s", r.code, r.err, r.stdout, r.stderr)
	}
	var res benchResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout.String())), &res); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, r.stdout)
	}
	if !res.Browsers || res.Peers != 2 || !res.Verified || len(res.P2PSeconds) != 2 || len(res.HTTPSeconds) != 2 {
		t.Fatalf("result %+v", res)
	}
	// The origin cap makes the second visitor want the first's blocks.
	if res.PeerBytes <= 0 || res.Offload <= 0 || res.OriginBytes >= 2*res.Size {
		t.Errorf("no sharing between the browsers: %d bytes from peers, offload %.3f, origin %d", res.PeerBytes, res.Offload, res.OriginBytes)
	}
	if res.RangeRequests == 0 || len(res.BlockHTTPCopies) == 0 {
		t.Errorf("the access log gave no range requests: %+v", res)
	}
	if res.HTTPOriginBytes != 2*res.Size {
		t.Errorf("HTTP phase origin bytes %d, want %d", res.HTTPOriginBytes, 2*res.Size)
	}
}

// One visitor from one Go seeder: a Go peer then a tab, both verified,
// throughput and the tab's memory reported.
func TestBenchFromSeeder(t *testing.T) {
	needChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := benchCmd(t, ctx, "--from-seeder", "--size", "4MiB", "--origin-rate", "1MB/s", "--json", "--timeout", "170s")
	if r.code != 0 {
		t.Fatalf("exit %d: %v\nstdout:\n%s\nstderr:\n%s", r.code, r.err, r.stdout, r.stderr)
	}
	var res seederResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout.String())), &res); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, r.stdout)
	}
	if !res.Verified || res.GoMBps <= 0 || res.BrowserMBps <= 0 || res.Ratio <= 0 {
		t.Fatalf("result %+v", res)
	}
	t.Logf("from the origin: Go %d, browser %d bytes", res.GoFromHTTP, res.BrowserFromHTTP)
	// The seeder carries the file: the origin is capped (slowly enough that
	// a visitor whose connection opens late, as under the race detector,
	// gets only a few blocks from it meanwhile) and loaded.
	if res.GoFromPeers < res.Size/2 || res.BrowserFromPeers < res.Size/2 {
		t.Errorf("the seeder carried %d (Go) and %d (browser) of %d bytes", res.GoFromPeers, res.BrowserFromPeers, res.Size)
	}
	if res.BrowserRSSIdle <= 0 || res.BrowserRSSPeak < res.BrowserRSSIdle {
		t.Errorf("browser memory idle %d, peak %d", res.BrowserRSSIdle, res.BrowserRSSPeak)
	}
}

func TestBenchIsRegistered(t *testing.T) {
	if _, ok := caddycmd.Commands()["bench"]; !ok {
		t.Fatal("bench is not registered")
	}
}

func TestArrivalsAndChurnPlan(t *testing.T) {
	if got := arrivalOffset(4, 5, 4*time.Second); got != 4*time.Second {
		t.Errorf("last arrival at %v, want the end of the window", got)
	}
	if got := arrivalOffset(0, 1, time.Second); got != 0 {
		t.Errorf("a lone peer arrives at %v", got)
	}
	cfg := benchConfig{arrivals: time.Minute, poisson: true, randSeed: 1}
	var prev time.Duration
	for i := range 20 {
		at := cfg.arrivalAt(i, 20)
		if at < prev || at > time.Minute || at != cfg.arrivalAt(i, 20) {
			t.Fatalf("Poisson arrival %d at %v after %v: want sorted, within the window, repeatable", i, at, prev)
		}
		prev = at
	}
	if cfg.arrivalAt(0, 20) == arrivalOffset(0, 20, time.Minute) && cfg.arrivalAt(19, 20) == time.Minute {
		t.Error("Poisson arrivals are the even ones")
	}
	plan := churnPlan(10, 0.3, 1)
	if len(plan) != 3 {
		t.Errorf("30%% of 10 peers: %d leave", len(plan))
	}
	for i, f := range plan {
		if f < 0.1 || f > 0.9 {
			t.Errorf("peer %d leaves at %v of the file", i, f)
		}
	}
	if len(churnPlan(2, 0.9, 1)) != 1 {
		t.Error("someone must stay")
	}
	mean, p50, p95 := timeStats([]float64{1, 2, 3, 4, 10})
	if mean != 4 || p50 != 3 || p95 != 10 {
		t.Errorf("timeStats = %v %v %v", mean, p50, p95)
	}
}

// checkPlot parses an SVG and checks it names each series; it returns
// every series' name.
func checkPlot(t *testing.T, path string, names ...string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	var series []string
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s is not valid XML: %v", path, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			for _, a := range se.Attr {
				if a.Name.Local == "data-name" {
					series = append(series, a.Value)
				}
			}
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	all := strings.Join(series, "|")
	for _, n := range names {
		if !strings.Contains(all, n) {
			t.Errorf("plot has no %q series; has %q", n, series)
		}
	}
	return series
}

// The visits scenario end to end, small: visitors one at a time; with
// persistence those who came before seed from their copies while they
// stay, and the coordinator counts them as seeders; without, nobody seeds.
func TestBenchVisitsJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	r := benchCmd(t, ctx, "--visits", "4", "--every", "2s", "--stay", "1m", "--size", "2MiB", "--block-size", "64KiB",
		"--origin-rate", "1MB/s", "--json", "--timeout", "110s")
	if r.code != 0 {
		t.Fatalf("exit %d: %v\nstdout:\n%s\nstderr:\n%s", r.code, r.err, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one JSON object per phase, got:\n%s", r.stdout)
	}
	for i, line := range lines {
		var res visitResult
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			t.Fatalf("line %d: %v\n%s", i, err, line)
		}
		t.Logf("persist %v: offload %.3f, seeders at arrival %v, %d bytes from peers", res.Persist, res.Offload, res.SeedersAtArrival, res.PeerBytes)
		if res.Persist != (i == 0) || !res.Verified || res.Offload < 0 || res.Offload > res.Limit+1e-9 || len(res.SeedersAtArrival) != 4 {
			t.Fatalf("line %d: %s", i, line)
		}
		if res.Persist && (res.SeedersAtArrival[3] < 1 || res.PeerBytes == 0) {
			t.Errorf("with persistence the last visitor found %d seeders and the visitors got %d bytes from peers", res.SeedersAtArrival[3], res.PeerBytes)
		}
		if !res.Persist && slices.Max(res.SeedersAtArrival) != 0 {
			t.Errorf("without persistence there were seeders: %v", res.SeedersAtArrival)
		}
	}
	if r := benchCmd(t, ctx, "--visits", "4", "--persist", "maybe"); r.code != 2 {
		t.Errorf("--persist maybe: exit %d, want 2", r.code)
	}
}
