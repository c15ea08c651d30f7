package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// seedingNow is peer5.stats().seeding.
type seedingNow struct {
	Leader      bool   `json:"leader"`
	Swarms      int    `json:"swarms"`
	Peers       int    `json:"peers"`
	Uploaded    int64  `json:"bytesUploaded"`
	CachedBytes int64  `json:"cachedBytes"`
	Blocked     string `json:"blocked"`
	Policy      string `json:"policy"`
	Consent     *bool  `json:"consent"`
}

// serverSeeding is the seeding part of GET {prefix}dashboard/stats, with the origin
// bytes beside it.
type serverSeeding struct {
	Swarm struct {
		Seeding struct {
			Peers         int   `json:"peers"`
			Members       int   `json:"members"`
			CachedBytes   int64 `json:"cachedBytes"`
			BytesUploaded int64 `json:"bytesUploaded"`
		} `json:"seeding"`
	} `json:"swarm"`
	Origin struct {
		Bytes int64 `json:"bytes"`
	} `json:"origin"`
}

// cacheEntries counts the files a page's persistent cache holds (OPFS).
const cacheEntries = "navigator.storage.getDirectory().then((r) => r.getDirectoryHandle('p2pxhr')).then(async (d) => { let n = 0; for await (const k of d.keys()) n++; return n; }).catch(() => 0)"

// navigate takes a tab to another page of the site, as a visitor clicking
// a link does: the page that was there is gone (or frozen in the
// back/forward cache, out of every swarm).
func navigate(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigating to %s: %v", url, err)
	}
}

// TestSeedingOutlivesTheDownload (issue 16): visitor A (a browser of its
// own) downloads a file and goes on to another page of the site; that page
// seeds the file from A's persistent cache, and visitor B (another
// browser) gets bytes from A. A's repeat download comes from its cache:
// no HTTP, no peers.
func TestSeedingOutlivesTheDownload(t *testing.T) {
	base := startSite(t, siteOptions{rateLimit: "8MB/s", fileSize: "8MiB"})
	size, sum := fileSHA256(t, base+"/files/demo.bin")

	a := visitorTab(t, browser(t), base+"/test/page.html")
	first := get(t, a, "peer5.Request", "/files/demo.bin", "blob")
	if first.Status != 200 || first.Response.SHA != sum || first.Stats.FromHTTP != size {
		t.Fatalf("A: status %d, sha %s, %d bytes from HTTP; want 200, %s, %d", first.Status, first.Response.SHA, first.Stats.FromHTTP, sum, size)
	}
	// The page writes the blocks to its cache as they come; a visitor
	// leaving at once may take the last ones with it.
	poll[bool](t, a, 10*time.Second, fmt.Sprintf("peer5.stats().seeding.cachedBytes === %d", size))
	navigate(t, a, base+"/test/page.html?another-page")
	s := poll[seedingNow](t, a, 20*time.Second, "(s => s.swarms === 1 && s)(peer5.stats().seeding)")
	if !s.Leader || s.CachedBytes != size {
		t.Fatalf("A's next page: %+v; want it leading, seeding the %d cached bytes", s, size)
	}
	var st serverSeeding
	waitUntil(t, 10*time.Second, "the coordinator to count A as a seeder", func() bool {
		st = readStats[serverSeeding](t, base, "")
		return st.Swarm.Seeding.Peers == 1
	})
	if st.Swarm.Seeding.CachedBytes != size {
		t.Errorf("the coordinator counts %d cached bytes, want %d", st.Swarm.Seeding.CachedBytes, size)
	}

	b := visitorTab(t, browser(t), base+"/test/page.html")
	got := get(t, b, "peer5.Request", "/files/demo.bin", "arraybuffer")
	t.Logf("B: %d bytes from HTTP, %d from %d peers", got.Stats.FromHTTP, got.Stats.FromPeers, got.Stats.Peers)
	if got.Status != 200 || got.Response.SHA != sum {
		t.Fatalf("B: status %d, sha %s; want 200, %s", got.Status, got.Response.SHA, sum)
	}
	if got.Stats.FromPeers <= 0 || got.Stats.FromHTTP+got.Stats.FromPeers != size {
		t.Fatalf("B: %d bytes from peers, %d from HTTP; want some from A's cache, %d in all", got.Stats.FromPeers, got.Stats.FromHTTP, size)
	}
	up := poll[seedingNow](t, a, 10*time.Second, "(s => s.bytesUploaded > 0 && s)(peer5.stats().seeding)")
	if up.Uploaded < got.Stats.FromPeers {
		t.Errorf("A's seeding uploaded %d bytes; B got %d from peers", up.Uploaded, got.Stats.FromPeers)
	}
	waitUntil(t, 20*time.Second, "the coordinator to count A's uploads as a seeder's", func() bool {
		return readStats[serverSeeding](t, base, "").Swarm.Seeding.BytesUploaded >= got.Stats.FromPeers
	})

	// The operators' dashboard shows the seeder.
	dash := tab(t, browser(t), base+"/_p2pxhr/dashboard")
	poll[bool](t, dash, 15*time.Second, "window.dashboardUpdates >= 1 && document.getElementById('seeders').textContent === '1'")

	// A's repeat download, on yet another page: from the cache alone.
	origin := readStats[serverSeeding](t, base, "").Origin.Bytes
	navigate(t, a, base+"/test/page.html?third-page")
	again := get(t, a, "peer5.Request", "/files/demo.bin", "blob")
	if again.Status != 200 || again.Response.SHA != sum || again.Stats.FromHTTP != 0 || again.Stats.FromPeers != 0 {
		t.Fatalf("A's repeat: status %d, sha %s, %d from HTTP, %d from peers; want the cache's %s, 0, 0",
			again.Status, again.Response.SHA, again.Stats.FromHTTP, again.Stats.FromPeers, sum)
	}
	if now := readStats[serverSeeding](t, base, "").Origin.Bytes; now != origin {
		t.Errorf("the origin sent %d bytes for A's repeat download, want 0", now-origin)
	}
}

// TestSeedingNeedsConsent (issue 16): with `upload consent`, a visitor
// who has not consented neither keeps nor serves anything: B gets nothing
// from A. Once A consents, its next download is kept and served to C;
// peer5.consent(false) wipes A's cache and stops its seeding.
func TestSeedingNeedsConsent(t *testing.T) {
	base := startSite(t, siteOptions{rateLimit: "8MB/s", fileSize: "8MiB", options: []string{"upload consent"}})
	size, sum := fileSHA256(t, base+"/files/demo.bin")

	ab := browser(t)
	a := visitorTab(t, ab, base+"/test/page.html")
	if r := get(t, a, "peer5.Request", "/files/demo.bin", "blob"); r.Status != 200 || r.Response.SHA != sum {
		t.Fatalf("A: status %d sha %s", r.Status, r.Response.SHA)
	}
	navigate(t, a, base+"/test/page.html?another-page")
	s := poll[seedingNow](t, a, 20*time.Second, "document.readyState === 'complete' && peer5.stats().seeding")
	if s.Swarms != 0 || s.Policy != "consent" || s.Consent != nil {
		t.Fatalf("A without consent: %+v; want no seeding under the consent policy", s)
	}
	if n := eval[float64](t, a, 10*time.Second, cacheEntries); n != 0 {
		t.Errorf("A's browser kept %v entries in its private file system without consent", n)
	}

	cb := browser(t)
	b := visitorTab(t, cb, base+"/test/page.html")
	got := get(t, b, "peer5.Request", "/files/demo.bin", "blob")
	if got.Status != 200 || got.Response.SHA != sum || got.Stats.FromPeers != 0 || got.Stats.FromHTTP != size {
		t.Fatalf("B: status %d sha %s, %d from peers, %d from HTTP; want nothing from A", got.Status, got.Response.SHA, got.Stats.FromPeers, got.Stats.FromHTTP)
	}
	closeTab(t, b)

	// A consents; the page downloads again (nothing was kept) and the next
	// page seeds it.
	if ok := eval[bool](t, a, 5*time.Second, "peer5.consent(true)"); !ok {
		t.Fatal("peer5.consent(true) did not resolve to true")
	}
	if r := get(t, a, "peer5.Request", "/files/demo.bin", "blob"); r.Status != 200 || r.Response.SHA != sum {
		t.Fatalf("A after consent: status %d sha %s", r.Status, r.Response.SHA)
	}
	poll[bool](t, a, 10*time.Second, fmt.Sprintf("peer5.stats().seeding.cachedBytes === %d", size))
	navigate(t, a, base+"/test/page.html?after-consent")
	poll[seedingNow](t, a, 20*time.Second, "(s => s.swarms === 1 && s.consent === true && s)(peer5.stats().seeding)")
	c := visitorTab(t, cb, base+"/test/page.html?visitor-c")
	got = get(t, c, "peer5.Request", "/files/demo.bin", "blob")
	if got.Response.SHA != sum || got.Stats.FromPeers <= 0 {
		t.Fatalf("C: sha %s, %d bytes from peers; want some from A once it consented", got.Response.SHA, got.Stats.FromPeers)
	}

	// Withdrawing consent wipes the cache and ends the seeding at once.
	eval[bool](t, a, 10*time.Second, "peer5.consent(false).then(() => true)")
	if s := eval[seedingNow](t, a, 5*time.Second, "peer5.stats().seeding"); s.Swarms != 0 || s.Consent == nil || *s.Consent {
		t.Fatalf("after consent(false): %+v", s)
	}
	waitUntil(t, 10*time.Second, "the coordinator to see A stop seeding", func() bool {
		return readStats[serverSeeding](t, base, "").Swarm.Seeding.Peers == 0
	})
	if n := eval[float64](t, a, 10*time.Second, cacheEntries); n != 0 {
		t.Errorf("after consent(false) the cache still holds %v entries", n)
	}
}

// cacheDirs lists the page's cache entries (swarm ids) with their files.
const cacheDirs = "navigator.storage.getDirectory().then((r) => r.getDirectoryHandle('p2pxhr')).then(async (d) => { const o = {}; for await (const [k, h] of d.entries()) { o[k] = []; for await (const n of h.keys()) o[k].push(n); } return o; })"

// TestCacheVerifiesAndFollowsTheOrigin (issue 16): a block corrupted in
// the cache is refused when read back (the repeat download fetches that
// block alone by HTTP), and a file changed at the origin drops the old
// blocks as soon as its new manifest is seen.
func TestCacheVerifiesAndFollowsTheOrigin(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f.bin")
	write := func(seed byte) string {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = byte(i*7) ^ seed
		}
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		// A new modification time, so the validators change too.
		at := time.Now().Add(time.Duration(seed) * time.Minute)
		os.Chtimes(file, at, at)
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:])
	}
	v1 := write(1)
	base := startSite(t, siteOptions{fileSize: "1MiB", dataDir: dir})
	a := visitorTab(t, browser(t), base+"/test/page.html")
	if r := get(t, a, "peer5.Request", "/data/f.bin", "blob"); r.Response.SHA != v1 || r.Stats.FromHTTP != 1<<20 {
		t.Fatalf("first download: sha %s, %d from HTTP", r.Response.SHA, r.Stats.FromHTTP)
	}
	poll[bool](t, a, 10*time.Second, "peer5.stats().seeding.cachedBytes === 1048576")
	old := eval[map[string][]string](t, a, 10*time.Second, cacheDirs)
	if len(old) != 1 {
		t.Fatalf("cache entries %v, want one", old)
	}
	var oldID string
	for id := range old {
		oldID = id
	}
	// Block 1 goes bad on disk.
	eval[bool](t, a, 10*time.Second, `navigator.storage.getDirectory().then((r) => r.getDirectoryHandle('p2pxhr')).then((d) => d.getDirectoryHandle(`+js(oldID)+`)).then((d) => d.getFileHandle('1')).then((f) => f.createWritable()).then(async (w) => { await w.write(new Uint8Array(262144)); await w.close(); return true; })`)

	navigate(t, a, base+"/test/page.html?again")
	r := get(t, a, "peer5.Request", "/data/f.bin", "blob")
	if r.Response.SHA != v1 || r.Stats.FromHTTP != 256<<10 || r.Stats.FromPeers != 0 {
		t.Fatalf("repeat over a corrupted block: sha %s (want %s), %d from HTTP (want the one block, 262144), %d from peers",
			r.Response.SHA, v1, r.Stats.FromHTTP, r.Stats.FromPeers)
	}

	v2 := write(2)
	navigate(t, a, base+"/test/page.html?changed")
	r = get(t, a, "peer5.Request", "/data/f.bin", "blob")
	if r.Response.SHA != v2 || r.Stats.FromHTTP != 1<<20 {
		t.Fatalf("changed file: sha %s (want %s), %d from HTTP", r.Response.SHA, v2, r.Stats.FromHTTP)
	}
	now := eval[map[string][]string](t, a, 10*time.Second, cacheDirs)
	if _, ok := now[oldID]; ok || len(now) != 1 {
		t.Fatalf("cache entries after the change %v: the old version %s must be gone", now, oldID)
	}
}

// TestSeedingPageKeepsTheBackForwardCache (issue 16): the seeding tab hands
// its Web Lock over on pagehide, so a page that seeds still goes into the
// back/forward cache, and leads again when the visitor comes back.
func TestSeedingPageKeepsTheBackForwardCache(t *testing.T) {
	base := startSite(t, siteOptions{fileSize: "2MiB"})
	a := visitorTab(t, browser(t), base+"/test/page.html", bfcacheProbe)
	var notCached []string
	if err := chromedp.Listen(a, func(ev any) {
		if e, ok := ev.(*page.EventBackForwardCacheNotUsed); ok {
			for _, r := range e.NotRestoredExplanations {
				notCached = append(notCached, string(r.Reason))
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	get(t, a, "peer5.Request", "/files/demo.bin", "blob")
	poll[bool](t, a, 10*time.Second, "peer5.stats().seeding.cachedBytes === 2097152")
	navigate(t, a, base+"/test/page.html?next")
	poll[seedingNow](t, a, 20*time.Second, "(s => s.leader && s.swarms === 1 && s)(peer5.stats().seeding)")
	if _, err := chromedp.Run(a, chromedp.Evaluate[any]("history.back()")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the seeding page to come back from the cache", func() bool {
		ctx, cancel := context.WithTimeout(a, 2*time.Second)
		defer cancel()
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("window.restored >= 1"))
		return err == nil && ok
	})
	if len(notCached) > 0 {
		t.Fatalf("the page did not come from the back/forward cache: %v", notCached)
	}
	// Back, it leads again; it serves the file from its own copy (it
	// downloaded it), so it seeds nothing from the cache. (Evaluated afresh
	// each time: a poll may hang across the history navigation.)
	waitUntil(t, 20*time.Second, "the restored page to lead again", func() bool {
		ctx, cancel := context.WithTimeout(a, 2*time.Second)
		defer cancel()
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("peer5.stats().seeding.leader"))
		return err == nil && ok
	})
}
