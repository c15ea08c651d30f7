package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
	"github.com/p2pxhr/p2pxhr/peer"
	"github.com/p2pxhr/p2pxhr/protocol"
)

// reloadSite is a Caddyfile whose site differs between reloads only in a
// response header, as a reload for a certificate or a header change does.
func reloadSite(base, root string, n int, p2pxhr string) string {
	return fmt.Sprintf("%s%s {\n\theader X-Reload %d\n%s\n\troot * %s\n\tfile_server\n}\n",
		testcaddy.GlobalOptions(), base, n, p2pxhr, root)
}

const reloadModule = "\tp2pxhr {\n\t\tblock_size 64KiB\n\t\thttp_rate_limit 256KiB\n\t\tdashboard\n\t}"

// gate holds a seeder's reads while paused.
type gate struct {
	mu sync.Mutex
	ch chan struct{}
}

func newGate() *gate {
	ch := make(chan struct{})
	close(ch)
	return &gate{ch: ch}
}

func (g *gate) pause() { g.mu.Lock(); g.ch = make(chan struct{}); g.mu.Unlock() }
func (g *gate) resume() {
	g.mu.Lock()
	select {
	case <-g.ch:
	default:
		close(g.ch)
	}
	g.mu.Unlock()
}

func (g *gate) wait() {
	g.mu.Lock()
	ch := g.ch
	g.mu.Unlock()
	<-ch
}

// gatedReader reads its bytes only while the gate is open.
type gatedReader struct {
	r *bytes.Reader
	g *gate
}

func (gr gatedReader) ReadAt(p []byte, off int64) (int, error) {
	gr.g.wait()
	return gr.r.ReadAt(p, off)
}

// memWriter is a download's destination in memory.
type memWriter struct {
	mu sync.Mutex
	b  []byte
}

func (m *memWriter) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if int(off)+len(p) > len(m.b) {
		return 0, io.ErrShortWrite
	}
	return copy(m.b[off:], p), nil
}

// loopbackPeer is a Go peer of the site at base; its coordinator
// connection's log lines go to logs.
func loopbackPeer(t *testing.T, base string, logs *syncLog, progress func(peer.Progress)) *peer.Client {
	t.Helper()
	cc, err := peer.NewCoordClient(base, peer.CoordOptions{Logf: logs.add, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c, err := peer.New(peer.Options{Signaller: cc, RTC: peer.RTCConfig{Loopback: true}, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// syncLog keeps a peer's log lines.
type syncLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *syncLog) add(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *syncLog) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, sub) {
			n++
		}
	}
	return n
}

// siteStatsNow reads the operators' figures.
func siteStatsNow(t *testing.T, base string) statsReport {
	t.Helper()
	_, body := testcaddy.FreshGet(t, base+"/_p2pxhr/dashboard/stats")
	var s statsReport
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("stats: %v: %s", err, body)
	}
	return s
}

func waitCond(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// settled returns the goroutine count and live heap once the count has
// stopped falling (what the last reload left winding down has ended).
func settled() (goroutines int, heap uint64) {
	prev := -1
	for i := 0; i < 50; i++ {
		runtime.GC()
		n := runtime.NumGoroutine()
		if n == prev {
			break
		}
		prev = n
		time.Sleep(100 * time.Millisecond)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return prev, ms.HeapAlloc
}

// Twenty reloads under a download in progress and a connected seeder:
// neither coordinator connection drops, the swarm, its manifest and the
// operators' figures stay, the download gets bytes from the seeder after
// the reloads, and goroutines and memory stay flat.
func TestSwarmSurvivesReloads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := t.TempDir()
	data := randomBytes(8<<20, 41)
	if err := os.WriteFile(filepath.Join(root, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", testcaddy.FreePort(t))
	startCaddyfile(t, reloadSite(base, root, 0, reloadModule), base)

	g := newGate()
	var seederLog, getterLog syncLog
	seeder := loopbackPeer(t, base, &seederLog, nil)
	seedCtx, stopSeeding := context.WithCancel(ctx)
	defer stopSeeding()
	go seeder.Seed(seedCtx, base+"/big.bin", gatedReader{bytes.NewReader(data), g})
	waitCond(t, ctx, "the seeder to join", func() bool { return siteStatsNow(t, base).Swarm.Members == 1 })

	// The seeder holds its blocks back while the config reloads: the
	// download is in progress (over HTTP, slowly) and owes its peer bytes
	// to the time after.
	g.pause()
	defer g.resume() // before the peers close, whatever happens
	var fromPeers atomic.Int64
	getter := loopbackPeer(t, base, &getterLog, func(p peer.Progress) { fromPeers.Store(p.FromPeers) })
	dst := &memWriter{b: make([]byte, len(data))}
	type outcome struct {
		res peer.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := getter.Download(ctx, base+"/big.bin", dst)
		done <- outcome{res, err}
	}()
	waitCond(t, ctx, "the getter to join", func() bool { return siteStatsNow(t, base).Swarm.Members == 2 })
	originBefore := siteStatsNow(t, base).Origin.Bytes

	var g5 int
	var h5 uint64
	for n := 1; n <= 20; n++ {
		testcaddy.Reload(t, reloadSite(base, root, n, reloadModule))
		res, _ := testcaddy.FreshGet(t, base+"/big.bin", "Range", "bytes=0-0")
		if got := res.Header.Get("X-Reload"); got != fmt.Sprint(n) {
			t.Fatalf("reload %d not in effect: X-Reload %q", n, got)
		}
		st := siteStatsNow(t, base)
		if st.Swarm.Peers != 2 || st.Swarm.Members != 2 || st.Swarm.Swarms != 1 {
			t.Fatalf("after reload %d: %d peers, %d members in %d swarms; want 2, 2, 1", n, st.Swarm.Peers, st.Swarm.Members, st.Swarm.Swarms)
		}
		if st.Origin.Bytes < originBefore {
			t.Fatalf("after reload %d the origin byte count went back from %d to %d", n, originBefore, st.Origin.Bytes)
		}
		if n == 5 {
			g5, h5 = settled()
		}
	}
	g20, h20 := settled()
	t.Logf("goroutines %d after 5 reloads, %d after 20; heap %.1f MiB, %.1f MiB", g5, g20, float64(h5)/(1<<20), float64(h20)/(1<<20))
	if g20 > g5+10 {
		t.Errorf("goroutines grew from %d to %d over 15 reloads", g5, g20)
	}
	if h20 > h5+8<<20 {
		t.Errorf("heap grew from %.1f to %.1f MiB over 15 reloads", float64(h5)/(1<<20), float64(h20)/(1<<20))
	}

	peersAtReloads := fromPeers.Load()
	g.resume()
	var out outcome
	select {
	case out = <-done:
	case <-ctx.Done():
		t.Fatal("the download did not finish")
	}
	if out.err != nil {
		t.Fatalf("download: %v", out.err)
	}
	if !bytes.Equal(dst.b, data) {
		t.Fatal("downloaded bytes differ from the origin's")
	}
	t.Logf("download: %d bytes from peers by the last reload, %d at the end, %d from HTTP", peersAtReloads, out.res.BytesFromPeers, out.res.BytesFromHTTP)
	if out.res.BytesFromPeers <= peersAtReloads {
		t.Errorf("no bytes from the seeder after the reloads (%d before, %d at the end)", peersAtReloads, out.res.BytesFromPeers)
	}
	for name, l := range map[string]*syncLog{"seeder": &seederLog, "getter": &getterLog} {
		if n := l.count("connection ended"); n > 0 {
			t.Errorf("the %s's coordinator connection ended %d times: %q", name, n, l.lines)
		}
	}
	if res, _ := testcaddy.FreshGet(t, base+"/_p2pxhr/manifest?url=/big.bin"); res.StatusCode != 200 {
		t.Errorf("the manifest answers %d", res.StatusCode)
	}
}

// seededSite runs a site with a 1 MiB file and a Go peer seeding it,
// joined; log has the seeder's coordinator log lines.
func seededSite(t *testing.T, ctx context.Context) (base, root string, log *syncLog) {
	t.Helper()
	root = t.TempDir()
	data := randomBytes(1<<20, 42)
	if err := os.WriteFile(filepath.Join(root, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	base = fmt.Sprintf("http://127.0.0.1:%d", testcaddy.FreePort(t))
	startCaddyfile(t, reloadSite(base, root, 0, reloadModule), base)
	log = &syncLog{}
	seeder := loopbackPeer(t, base, log, nil)
	go seeder.Seed(ctx, base+"/big.bin", bytes.NewReader(data))
	waitCond(t, ctx, "the seeder to join", func() bool { return siteStatsNow(t, base).Swarm.Members == 1 })
	return base, root, log
}

// A reload that removes the directive closes the peers' connections as a
// server going away (1001), removes the range cache and the module's
// routes.
func TestReloadWithoutTheDirectiveClosesPeers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base, root, log := seededSite(t, ctx)
	cacheDirs := func() []string {
		dirs, _ := filepath.Glob(filepath.Join(rangeCacheDir(), "cache-*"))
		return dirs
	}
	before := len(cacheDirs())

	testcaddy.Reload(t, reloadSite(base, root, 1, ""))
	waitCond(t, ctx, "the seeder's connection to be closed", func() bool { return log.count("connection ended") > 0 })
	if log.count("1001") == 0 {
		t.Errorf("the connection did not end as a server going away (1001): %q", log.lines)
	}
	if res, _ := testcaddy.FreshGet(t, base+"/_p2pxhr/client.js"); res.StatusCode != 404 {
		t.Errorf("client.js still answers %d", res.StatusCode)
	}
	if after := len(cacheDirs()); after != before-1 {
		t.Errorf("%d range cache directories before the reload, %d after; want one fewer", before, after)
	}
}

// A Go peer told unknown-swarm (the server restarted and has not built the
// manifest again) fetches the manifest again and rejoins.
func TestGoPeerRejoinsAfterUnknownSwarm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base, _, log := seededSite(t, ctx)

	testcaddy.Restart(t, base) // nothing of the site survives a restart
	waitCond(t, ctx, "the seeder to rejoin", func() bool { return siteStatsNow(t, base).Swarm.Members == 1 })
	if log.count("unknown-swarm") == 0 {
		t.Errorf("the rejoin did not meet unknown-swarm first, so this test proves nothing: %q", log.lines)
	}
}

// Two sites of one config (two hosts on one listener here) keep apart
// what they count, before and after a reload.
func TestSitesKeepTheirOwnState(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "big.bin"), randomBytes(300<<10, 44), 0o644)
	port := testcaddy.FreePort(t)
	a, b := fmt.Sprintf("http://127.0.0.1:%d", port), fmt.Sprintf("http://localhost:%d", port)
	config := func(n int) string {
		site := func(addr string) string {
			return fmt.Sprintf("%s {\n\theader X-Reload %d\n%s\n\troot * %s\n\tfile_server\n}\n", addr, n, reloadModule, root)
		}
		return testcaddy.GlobalOptions() + site(a) + site(b)
	}
	startCaddyfile(t, config(0), a)
	testcaddy.FreshGet(t, a+"/big.bin")
	// The module books a write after it returns, which can be after the
	// client has read the last byte.
	deadline := time.Now().Add(5 * time.Second)
	for got := siteStatsNow(t, a).Origin.Bytes; got != 300<<10; got = siteStatsNow(t, a).Origin.Bytes {
		if time.Now().After(deadline) {
			t.Fatalf("site a counted %d origin bytes, want %d", got, 300<<10)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := siteStatsNow(t, b).Origin.Bytes; got != 0 {
		t.Errorf("site b counted %d origin bytes of site a's download", got)
	}
	// The dashboard's history books the download within a sample period.
	deadline = time.Now().Add(15 * time.Second)
	for historyOrigin(t, a) != 300<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("site a's history never booked the %d origin bytes", 300<<10)
		}
		time.Sleep(100 * time.Millisecond)
	}
	testcaddy.Reload(t, config(1))
	if ga, gb := siteStatsNow(t, a).Origin.Bytes, siteStatsNow(t, b).Origin.Bytes; ga != 300<<10 || gb != 0 {
		t.Errorf("after a reload: a %d, b %d origin bytes; want %d and 0", ga, gb, 300<<10)
	}
	if ha, hb := historyOrigin(t, a), historyOrigin(t, b); ha != 300<<10 || hb != 0 {
		t.Errorf("after a reload the history holds %d origin bytes for a, %d for b; want %d and 0", ha, hb, 300<<10)
	}
}

// historyOrigin sums the origin bytes of the site's dashboard history.
func historyOrigin(t *testing.T, base string) int64 {
	t.Helper()
	_, body := testcaddy.FreshGet(t, base+"/_p2pxhr/dashboard/stats?history=0")
	var s statsReport
	if err := json.Unmarshal(body, &s); err != nil || s.History == nil {
		t.Fatalf("stats?history=0: %v: %s", err, body)
	}
	var n int64
	for _, p := range s.History.Points {
		n += p.Origin
	}
	return n
}

// A reload's settings apply at once, to the kept state too.
func TestReloadTakesTheNewSettings(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "big.bin"), randomBytes(300<<10, 45), 0o644)
	base := fmt.Sprintf("http://127.0.0.1:%d", testcaddy.FreePort(t))
	startCaddyfile(t, reloadSite(base, root, 0, reloadModule), base)
	if res, _ := testcaddy.FreshGet(t, base+"/_p2pxhr/manifest?url=/big.bin"); res.StatusCode != 200 {
		t.Fatalf("manifest: %d", res.StatusCode)
	}
	testcaddy.Reload(t, reloadSite(base, root, 1, "\tp2pxhr {\n\t\tblock_size 64KiB\n\t\tpaths /elsewhere/*\n\t}"))
	if res, _ := testcaddy.FreshGet(t, base+"/_p2pxhr/manifest?url=/big.bin"); res.StatusCode != 403 {
		t.Errorf("manifest of a path no longer in paths: %d, want 403", res.StatusCode)
	}
	if res, _ := testcaddy.FreshGet(t, base+"/_p2pxhr/dashboard/stats"); res.StatusCode == 200 {
		t.Error("the dashboard is still served after a reload that turned it off")
	}
}

// A reload that changes what the coordinator is built with (here
// max_neighbours) starts a new one: peers are cut over as from a server
// going away and rejoin it by themselves, their swarm still known.
func TestReloadRebuildingTheCoordinatorRejoinsPeers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base, root, log := seededSite(t, ctx)
	testcaddy.Reload(t, reloadSite(base, root, 1, "\tp2pxhr {\n\t\tblock_size 64KiB\n\t\tmax_neighbours 3\n\t\tdashboard\n\t}"))
	waitCond(t, ctx, "the old coordinator to close", func() bool { return log.count("connection ended") > 0 })
	waitCond(t, ctx, "the seeder to join the new one", func() bool { return siteStatsNow(t, base).Swarm.Members == 1 })
	if n := log.count("unknown-swarm"); n > 0 {
		t.Errorf("the new coordinator did not know the swarm (%d unknown-swarm)", n)
	}
}

// A manifest request that straddles a reload still gets its manifest: the
// old config's builds are not cut off while someone waits for them (the
// old server drains its requests; the build ends with its last waiter).
func TestManifestBuildStraddlingAReload(t *testing.T) {
	data := randomBytes(1<<20, 63)
	origin := newHeldOrigin(data)
	upstream := httptest.NewServer(origin)
	defer upstream.Close()
	defer origin.free()
	base := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	site := func(n int) string {
		return fmt.Sprintf("%s%s {\n\theader X-Reload %d\n\tp2pxhr\n\treverse_proxy %s\n}\n",
			testcaddy.GlobalOptions(), base, n, upstream.URL)
	}
	startCaddyfile(t, site(0), base)

	got := manifestAsync(context.Background(), base, "/f.bin")
	<-origin.started
	testcaddy.Reload(t, site(1))
	origin.free()
	select {
	case m := <-got:
		if m == nil {
			t.Fatal("the manifest request that straddled the reload got no manifest")
		}
		if want := independentHashes(data, protocol.DefaultBlockSize); len(m.Blocks) != len(want) || m.Blocks[0] != want[0] {
			t.Fatal("manifest of the wrong bytes")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no answer to the manifest request within 60 s")
	}
}
