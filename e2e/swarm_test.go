package e2e

import (
	"testing"
	"time"
)

// download is what trace() in client/test/helpers.js returns.
type download struct {
	Events   []string  `json:"events"`
	Progress []float64 `json:"progress"`
	Status   int       `json:"status"`
	Ready    int       `json:"readyState"`
	Type     string    `json:"contentType"`
	Total    float64   `json:"total"`
	Response struct {
		Kind string `json:"kind"`
		Size int64  `json:"size"`
		Type string `json:"type"`
		SHA  string `json:"sha"`
		JSON string `json:"json"`
	} `json:"response"`
	Stats struct {
		FromHTTP  int64 `json:"bytesFromHttp"`
		FromPeers int64 `json:"bytesFromPeers"`
		Peers     int   `json:"peers"`
	} `json:"stats"`
}

func get(t *testing.T, ctx tabCtx, ctor, url, responseType string) download {
	t.Helper()
	return eval[download](t, ctx, 60*time.Second, "trace("+ctor+", "+js(url)+", "+js(responseType)+")")
}

// TestTwoTabsShareBlocks: a second tab gets the file partly from the first
// over WebRTC, byte-identical, with the server throttled.
func TestTwoTabsShareBlocks(t *testing.T) {
	b := browser(t)
	base := startSite(t, siteOptions{rateLimit: "8MB/s", fileSize: "8MiB"})
	size, sum := fileSHA256(t, base+"/files/demo.bin")

	first := tab(t, b, base+"/test/page.html")
	a := get(t, first, "peer5.Request", "/files/demo.bin", "blob")
	if a.Status != 200 || a.Response.Size != size || a.Response.SHA != sum {
		t.Fatalf("first tab: status %d, %d bytes, sha %s; want %d bytes, sha %s", a.Status, a.Response.Size, a.Response.SHA, size, sum)
	}
	if a.Stats.FromHTTP != size {
		t.Errorf("first tab: %d bytes from HTTP, want all %d", a.Stats.FromHTTP, size)
	}

	second := tab(t, b, base+"/test/page.html")
	s := get(t, second, "peer5.Request", "/files/demo.bin", "arraybuffer")
	t.Logf("second tab: %d bytes from HTTP, %d from %d peers", s.Stats.FromHTTP, s.Stats.FromPeers, s.Stats.Peers)
	if s.Status != 200 || s.Response.Size != size || s.Response.SHA != sum {
		t.Fatalf("second tab: status %d, %d bytes, sha %s; want %d bytes, sha %s", s.Status, s.Response.Size, s.Response.SHA, size, sum)
	}
	if s.Stats.FromPeers <= 0 || s.Stats.FromHTTP+s.Stats.FromPeers != size {
		t.Fatalf("second tab: %d bytes from peers, %d from HTTP; want some from peers, %d in all", s.Stats.FromPeers, s.Stats.FromHTTP, size)
	}
	up := eval[float64](t, first, 5*time.Second, "peer5.stats().bytesUploaded")
	if int64(up) < s.Stats.FromPeers {
		t.Errorf("first tab uploaded %v bytes, second got %d from peers", up, s.Stats.FromPeers)
	}
}

// TestCoordinatorDown: with the coordinator unreachable the request still
// completes, by HTTP ranges, with the same bytes.
func TestCoordinatorDown(t *testing.T) {
	b := browser(t)
	base := startSite(t, siteOptions{fileSize: "2MiB"})
	size, sum := fileSHA256(t, base+"/files/demo.bin")
	// A WebSocket that never connects, as when the coordinator is down.
	ctx := tab(t, b, base+"/test/page.html", `window.WebSocket = class { constructor() { setTimeout(() => this.onclose && this.onclose({ code: 1006 }), 10); } send() { throw new Error('closed'); } close() {} };`)
	r := get(t, ctx, "peer5.Request", "/files/demo.bin", "blob")
	if r.Status != 200 || r.Response.SHA != sum || r.Stats.FromHTTP != size || r.Stats.FromPeers != 0 {
		t.Fatalf("status %d sha %s http %d peers %d; want 200 %s %d 0", r.Status, r.Response.SHA, r.Stats.FromHTTP, r.Stats.FromPeers, sum, size)
	}
}

// TestWebRTCDisabled: without RTCPeerConnection the request is delegated to
// a native XHR and gets the same bytes.
func TestWebRTCDisabled(t *testing.T) {
	b := browser(t)
	base := startSite(t, siteOptions{fileSize: "2MiB"})
	size, sum := fileSHA256(t, base+"/files/demo.bin")
	ctx := tab(t, b, base+"/test/page.html", `delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;`)
	r := get(t, ctx, "peer5.Request", "/files/demo.bin", "arraybuffer")
	if r.Status != 200 || r.Response.SHA != sum || r.Response.Size != size || r.Stats.FromHTTP != size {
		t.Fatalf("status %d sha %s size %d http %d; want 200 %s %d", r.Status, r.Response.SHA, r.Response.Size, r.Stats.FromHTTP, sum, size)
	}
	f := eval[string](t, ctx, 30*time.Second, `peer5.fetch('/files/demo.bin').then((r) => r.arrayBuffer()).then(sha256hex)`)
	if f != sum {
		t.Fatalf("peer5.fetch without WebRTC: sha %s, want %s", f, sum)
	}
}
