package e2e

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// groupTotals is one group of GET {prefix}dashboard/stats.
type groupTotals struct {
	Downloads      int64            `json:"downloads"`
	Outcomes       map[string]int64 `json:"outcomes"`
	BytesFromHTTP  int64            `json:"bytesFromHttp"`
	BytesFromPeers int64            `json:"bytesFromPeers"`
}

// serverStats reads GET {prefix}dashboard/stats.
func serverStats(t *testing.T, base string) map[string]groupTotals {
	t.Helper()
	return readStats[struct {
		Groups map[string]groupTotals `json:"groups"`
	}](t, base, "").Groups
}

// metric reads one sample of Caddy's /metrics: name with exactly these
// labels (any order); -1 when absent.
func metric(t *testing.T, base, name string, labels map[string]string) float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok {
			continue
		}
		set, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		got := map[string]string{}
		for _, kv := range strings.Split(set, ",") {
			k, v, _ := strings.Cut(kv, "=")
			got[k] = strings.Trim(v, `"`)
		}
		if len(got) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			match = match && got[k] == v
		}
		if match {
			f, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// countWebSockets is run in a tab before its scripts: it counts the
// WebSockets the page opens (the "http" group must open none).
const countWebSockets = `window.__sockets = 0; { const W = window.WebSocket; window.WebSocket = class extends W { constructor(...a) { super(...a); window.__sockets++; } }; }`

// TestReportsGroupsAndMetrics (issue 7): two P2P tabs download a file and
// an HTTP-group tab does too; {prefix}dashboard/stats groups and Caddy's metrics carry
// exactly the bytes the tabs' own request.stats show. The dashboard is then
// checked against the same data.
func TestReportsGroupsAndMetrics(t *testing.T) {
	b := browser(t)
	base := startSite(t, siteOptions{rateLimit: "8MB/s", fileSize: "4MiB", inject: true, metrics: true, options: []string{"ab 50", "dashboard"}})
	size, sum := fileSHA256(t, base+"/files/demo.bin")
	page := base + "/test/plain.html?p2pxhr_group="

	var tabs []download
	for i := 0; i < 2; i++ {
		ctx := tab(t, b, page+"p2p")
		if g := eval[string](t, ctx, 5*time.Second, `document.querySelector('script[data-prefix]').dataset.group`); g != "p2p" {
			t.Fatalf("tab %d: injected data-group %q, want p2p", i, g)
		}
		d := get(t, ctx, "peer5.Request", "/files/demo.bin", "blob")
		if d.Status != 200 || d.Response.SHA != sum || d.Stats.FromHTTP+d.Stats.FromPeers != size {
			t.Fatalf("p2p tab %d: status %d sha %s, %d+%d bytes; want %s, %d", i, d.Status, d.Response.SHA, d.Stats.FromHTTP, d.Stats.FromPeers, sum, size)
		}
		t.Logf("p2p tab %d: %d bytes from HTTP, %d from peers", i, d.Stats.FromHTTP, d.Stats.FromPeers)
		tabs = append(tabs, d)
	}
	if tabs[1].Stats.FromPeers == 0 {
		t.Errorf("the second p2p tab got nothing from peers")
	}
	var wantHTTP, wantPeers int64
	for _, d := range tabs {
		wantHTTP += d.Stats.FromHTTP
		wantPeers += d.Stats.FromPeers
	}
	waitUntil(t, 10*time.Second, "two p2p reports", func() bool { return serverStats(t, base)["p2p"].Downloads >= 2 })
	g := serverStats(t, base)["p2p"]
	if g.Downloads != 2 || g.Outcomes["ok"] != 2 || g.BytesFromHTTP != wantHTTP || g.BytesFromPeers != wantPeers {
		t.Fatalf("stats groups.p2p = %+v; want 2 ok downloads, %d from HTTP, %d from peers", g, wantHTTP, wantPeers)
	}
	for source, want := range map[string]int64{"http": wantHTTP, "peers": wantPeers} {
		if got := metric(t, base, "p2pxhr_client_bytes_total", map[string]string{"group": "p2p", "source": source}); got != float64(want) {
			t.Errorf(`p2pxhr_client_bytes_total{group="p2p",source=%q} = %v, want %d`, source, got, want)
		}
	}
	if got := metric(t, base, "p2pxhr_downloads_total", map[string]string{"group": "p2p", "outcome": "ok"}); got != 2 {
		t.Errorf(`p2pxhr_downloads_total{group="p2p",outcome="ok"} = %v, want 2`, got)
	}

	// The HTTP group: same request, HTTP ranges only, no coordinator.
	h := tab(t, b, page+"http", countWebSockets)
	d := get(t, h, "peer5.Request", "/files/demo.bin", "arraybuffer")
	if d.Status != 200 || d.Response.SHA != sum || d.Stats.FromHTTP != size || d.Stats.FromPeers != 0 {
		t.Fatalf("http tab: status %d sha %s, %d from HTTP, %d from peers; want %s, %d, 0", d.Status, d.Response.SHA, d.Stats.FromHTTP, d.Stats.FromPeers, sum, size)
	}
	if n := eval[int](t, h, 5*time.Second, "window.__sockets"); n != 0 {
		t.Errorf("http tab opened %d WebSockets, want none", n)
	}
	waitUntil(t, 10*time.Second, "the http report", func() bool { return serverStats(t, base)["http"].Downloads >= 1 })
	hg := serverStats(t, base)["http"]
	if hg.Downloads != 1 || hg.Outcomes["ok"] != 1 || hg.BytesFromHTTP != size || hg.BytesFromPeers != 0 {
		t.Fatalf("stats groups.http = %+v; want 1 ok download, %d from HTTP, 0 from peers", hg, size)
	}
	if got := metric(t, base, "p2pxhr_client_bytes_total", map[string]string{"group": "http", "source": "http"}); got != float64(size) {
		t.Errorf(`p2pxhr_client_bytes_total{group="http",source="http"} = %v, want %d`, got, size)
	}
	if got := serverStats(t, base)["p2p"].Downloads; got != 2 {
		t.Errorf("the http tab's report changed the p2p group: %d downloads", got)
	}

	// Aborts are reported too: by the page (abort()) and by leaving it
	// mid-download (the beacon on pagehide). The "http" group keeps nothing,
	// so each repeat is a real download.
	a := eval[download](t, h, 30*time.Second, `trace(peer5.Request, '/files/demo.bin', 'blob', { abortAt: 1 })`)
	if a.Status != 0 || !strings.Contains(strings.Join(a.Events, " "), "abort") {
		t.Fatalf("aborted request: status %d, events %v", a.Status, a.Events)
	}
	eval[bool](t, h, 5*time.Second, `(trace(peer5.Request, '/files/demo.bin', 'blob'), true)`)
	poll[bool](t, h, 10*time.Second, `(s => s && s.loaded > 0)(peer5.stats('/files/demo.bin'))`)
	if err := chromedp.Do(h, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "two abort reports", func() bool { return serverStats(t, base)["http"].Outcomes["abort"] >= 2 })
	if hg := serverStats(t, base)["http"]; hg.Downloads != 3 || hg.Outcomes["ok"] != 1 || hg.Outcomes["abort"] != 2 {
		t.Errorf("stats groups.http after two aborts = %+v; want 3 downloads, 1 ok, 2 abort", hg)
	}

	t.Run("dashboard", func(t *testing.T) { checkDashboard(t, b, base) })
}
