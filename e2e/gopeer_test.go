package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/p2pxhr/p2pxhr/peer"
	"github.com/p2pxhr/p2pxhr/protocol"
)

// goPeer starts a Go peer on loopback that meets tabs through the site's
// coordinator.
func goPeer(t *testing.T, site string) *peer.Client {
	t.Helper()
	sig, err := peer.NewCoordClient(site, peer.CoordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := peer.New(peer.Options{Signaller: sig, RTC: peer.RTCConfig{Loopback: true}})
	if err != nil {
		sig.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// memFile is an io.WriterAt for a Go download.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if n := int(off) + len(p); n > len(m.b) {
		m.b = append(m.b, make([]byte, n-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

// originCopy downloads url plainly, for the bytes every copy must equal.
func originCopy(t *testing.T, url string) ([]byte, [sha256.Size]byte) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return data, sha256.Sum256(data)
}

// TestTabAndGoPeerExchangeBlocks: a Go seeder serves a tab; then, with the
// seeder gone, a Go downloader takes blocks from the tab.
func TestTabAndGoPeerExchangeBlocks(t *testing.T) {
	b := browser(t)
	// A slow origin: the Go downloader's HTTP must not finish the whole
	// file before its connection to the tab opens (4 MiB take 4 s here).
	base := startSite(t, siteOptions{rateLimit: "1MB/s", fileSize: "4MiB"})
	file := base + "/files/demo.bin"
	data, sum := originCopy(t, file)

	seedCtx, stopSeed := context.WithTimeout(context.Background(), time.Minute)
	defer stopSeed()
	seeder := goPeer(t, base)
	seeded := make(chan error, 1)
	go func() { seeded <- seeder.Seed(seedCtx, file, bytes.NewReader(data)) }()

	ctx := tab(t, b, base+"/test/page.html")
	r := get(t, ctx, "peer5.Request", "/files/demo.bin", "blob")
	if r.Response.SHA != hex.EncodeToString(sum[:]) || r.Stats.FromPeers <= 0 {
		t.Fatalf("tab: sha %s, %d bytes from peers; want %x and some from the Go seeder", r.Response.SHA, r.Stats.FromPeers, sum)
	}
	t.Logf("tab: %d bytes from HTTP, %d from the Go seeder", r.Stats.FromHTTP, r.Stats.FromPeers)
	stopSeed()
	<-seeded
	// The tab alone in the swarm now: the Go downloader can only meet it.
	waitUntil(t, 10*time.Second, "the seeder to leave the swarm", func() bool { return swarmStats(t, base).Members == 1 })

	// Every time: a Go peer's candidates used to overtake its offer now and
	// then, and the tab, which makes its connection on the offer, dropped
	// them; its own mDNS candidates mean nothing to pion, so nothing opened.
	dl := goPeer(t, base)
	dctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out memFile
	got, err := dl.Download(dctx, file, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.b, data) {
		t.Fatal("Go downloader: the file differs from the origin's")
	}
	t.Logf("Go downloader: %d bytes from HTTP, %d from the tab", got.BytesFromHTTP, got.BytesFromPeers)
	if got.BytesFromPeers == 0 {
		t.Fatal("the Go downloader took nothing from the tab")
	}
}

// TestGoPeerServingCorruptBlocks: a Go peer sending wrong bytes for every
// block is dropped and reported by the tab, whose result is still
// byte-identical to the origin's.
func TestGoPeerServingCorruptBlocks(t *testing.T) {
	b := browser(t)
	base := startSite(t, siteOptions{rateLimit: "8MB/s", fileSize: "4MiB"})
	file := base + "/files/demo.bin"
	data, sum := originCopy(t, file)

	sig, err := peer.NewCoordClient(base, peer.CoordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	liar, err := peer.NewMisbehaving(peer.Options{Signaller: sig, RTC: peer.RTCConfig{Loopback: true}},
		peer.Misbehaviour{Corrupt: func(int) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer liar.Close()
	seedCtx, stopSeed := context.WithTimeout(context.Background(), time.Minute)
	defer stopSeed()
	go liar.Seed(seedCtx, file, bytes.NewReader(data))
	waitUntil(t, 10*time.Second, "the liar to join", func() bool { return swarmStats(t, base).Members == 1 })

	ctx := tab(t, b, base+"/test/page.html")
	r := get(t, ctx, "peer5.Request", "/files/demo.bin", "blob")
	if r.Response.SHA != hex.EncodeToString(sum[:]) {
		t.Fatalf("tab: sha %s, want %x", r.Response.SHA, sum)
	}
	waitUntil(t, 10*time.Second, "the tab to report the liar", func() bool { return swarmStats(t, base).Reports >= 1 })
	t.Logf("tab: %d bytes from HTTP, %d from peers", r.Stats.FromHTTP, r.Stats.FromPeers)
}

// swarmStats reads the coordinator's counts from the site's stats route.
func swarmStats(t *testing.T, base string) struct{ Members, Reports int64 } {
	t.Helper()
	res, err := http.Get(base + "/_p2pxhr/dashboard/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var s struct {
		Swarm struct{ Members, Reports int64 } `json:"swarm"`
	}
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s.Swarm
}

// TestGoPeersStallingTab: a Go peer that claims every block and then
// declines (busy, other), ignores or trickles the tab's requests must not
// hold up peer5.fetch: from its first missed deadline (8 s) HTTP takes its
// blocks, and the tab drops and reports it once it has served nothing for
// two deadlines, or declined 16 requests. Before the fix the rejecting
// peers stalled the fetch for ever and the others let it crawl at a block
// or two per deadline.
func TestGoPeersStallingTab(t *testing.T) {
	b := browser(t)
	cases := []struct {
		name     string
		m        peer.Misbehaviour
		fileSize string // the silent case lasts past two deadlines, so the drop shows
		rate     string
		report   bool
	}{
		{"reject-busy", peer.Misbehaviour{ClaimAll: true, Reject: true, RejectReason: protocol.RejectBusy}, "8MiB", "8MB/s", true},
		{"reject-other", peer.Misbehaviour{ClaimAll: true, Reject: true, RejectReason: protocol.RejectOther}, "8MiB", "8MB/s", true},
		{"silent", peer.Misbehaviour{ClaimAll: true, Silent: true}, "40MiB", "2MB/s", true},
		{"trickle", peer.Misbehaviour{ClaimAll: true, Trickle: 16 << 10}, "8MiB", "8MB/s", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := startSite(t, siteOptions{rateLimit: tc.rate, fileSize: tc.fileSize})
			file := base + "/files/demo.bin"
			data, sum := originCopy(t, file)
			sig, err := peer.NewCoordClient(base, peer.CoordOptions{})
			if err != nil {
				t.Fatal(err)
			}
			bad, err := peer.NewMisbehaving(peer.Options{Signaller: sig, RTC: peer.RTCConfig{Loopback: true}}, tc.m)
			if err != nil {
				t.Fatal(err)
			}
			defer bad.Close()
			seedCtx, stopSeed := context.WithTimeout(context.Background(), 2*time.Minute)
			defer stopSeed()
			go bad.Seed(seedCtx, file, bytes.NewReader(data))
			waitUntil(t, 10*time.Second, "the attacker to join", func() bool { return swarmStats(t, base).Members == 1 })

			ctx := tab(t, b, base+"/test/page.html")
			type res struct {
				SHA   string  `json:"sha"`
				Peers float64 `json:"peers"`
			}
			r := eval[res](t, ctx, 2*time.Minute, `peer5.fetch('/files/demo.bin').then(async (r) => ({
				sha: await r.arrayBuffer().then(sha256hex), peers: r.stats.bytesFromPeers}))`)
			if r.SHA != hex.EncodeToString(sum[:]) {
				t.Fatalf("sha %s, want %x", r.SHA, sum)
			}
			if tc.report {
				waitUntil(t, 10*time.Second, "the tab to report the attacker", func() bool { return swarmStats(t, base).Reports >= 1 })
			}
			t.Logf("%v bytes from peers", r.Peers)
		})
	}
}

// TestIdleJoinersDoNotEclipseTab: a tab seeds; twelve WebSocket-only
// joiners take all its link slots at the coordinator and never send an
// offer. The tab reports each of them unreachable when no offer comes
// (5 s), the coordinator frees its slots, and a Go downloader arriving
// meanwhile gets blocks from the tab. Before the fix the tab stayed hidden
// and the download came all by HTTP.
func TestIdleJoinersDoNotEclipseTab(t *testing.T) {
	b := browser(t)
	base := startSite(t, siteOptions{rateLimit: "1MB/s", fileSize: "16MiB"})
	file := base + "/files/demo.bin"
	data, _ := originCopy(t, file)

	ctx := tab(t, b, base+"/test/page.html")
	if r := get(t, ctx, "peer5.Request", "/files/demo.bin", "blob"); r.Status != 200 {
		t.Fatalf("tab: status %d", r.Status)
	}
	m := siteManifest(t, base, "/files/demo.bin")
	for range 12 { // from another network, as an attacker's host would be
		cc := coordClientFrom(t, base, net.IPv4(127, 0, 9, 1))
		go func() {
			for range cc.Neighbours() {
			}
		}()
		go func() {
			for range cc.Signals() {
			}
		}()
		if err := cc.Join(context.Background(), m.ID, "", make([]bool, len(m.Blocks))); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 10*time.Second, "the idle joiners to join", func() bool { return swarmStats(t, base).Members == 13 })

	dl := goPeer(t, base)
	dctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out memFile
	got, err := dl.Download(dctx, file, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.b, data) {
		t.Fatal("the Go downloader's file differs from the origin's")
	}
	t.Logf("Go downloader: %d bytes from HTTP, %d from the tab", got.BytesFromHTTP, got.BytesFromPeers)
	if got.BytesFromPeers == 0 {
		t.Fatal("the tab stayed hidden behind the idle joiners")
	}
}

// siteManifest is the module's manifest of path on the site at base.
func siteManifest(t *testing.T, base, path string) protocol.Manifest {
	t.Helper()
	res, err := http.Get(base + "/_p2pxhr/manifest?url=" + url.QueryEscape(path))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m protocol.Manifest
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// coordClientFrom is a coordinator client of the site at base that
// connects from the loopback address ip (another network, to the
// coordinator), closed when the test ends.
func coordClientFrom(t *testing.T, base string, ip net.IP) *peer.CoordClient {
	t.Helper()
	cc, err := peer.NewCoordClient(base, peer.CoordOptions{Dialer: &websocket.Dialer{
		NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}).DialContext}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}
