package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/p2pxhr/p2pxhr/internal/browsertest"
)

// browser starts one headless Chromium for the test, or skips it.
func browser(t *testing.T) context.Context { return browsertest.Start(t) }

// page is a plain HTML page: the node's module injects the client tag.
const page = `<!doctype html>
<html>
<head><meta charset="utf-8"><title>P2PXHR cluster test</title></head>
<body><p>A page with no script of its own.</p></body>
</html>
`

// fetchJS downloads /files/demo.bin with peer5.Request and resolves to its
// status, size, SHA-256 (crypto.subtle) and the request's stats.
const fetchJS = `new Promise((resolve) => {
  const x = new peer5.Request();
  x.open('GET', '/files/demo.bin');
  x.responseType = 'arraybuffer';
  x.onload = async () => {
    const d = await crypto.subtle.digest('SHA-256', x.response);
    resolve({status: x.status, size: x.response.byteLength,
      sha: Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, '0')).join(''),
      stats: x.stats});
  };
  x.onerror = () => resolve({status: x.status, error: 'error event'});
  x.send();
})`

// tabResult is what fetchJS resolves to.
type tabResult struct {
	Status int    `json:"status"`
	Size   int64  `json:"size"`
	SHA    string `json:"sha"`
	Error  string `json:"error"`
	Stats  struct {
		FromHTTP  int64 `json:"bytesFromHttp"`
		FromPeers int64 `json:"bytesFromPeers"`
		Peers     int   `json:"peers"`
	} `json:"stats"`
}

// TestTabOnAGoSeederOnB: a Chromium tab on a page of node a (client
// injected by a) downloads with peer5.Request from a Go peer seeding
// through node b.
func TestTabOnAGoSeederOnB(t *testing.T) {
	bctx := browser(t)
	pages := t.TempDir()
	if err := os.WriteFile(filepath.Join(pages, "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, nodeOptions{rateLimit: rateLimit, pages: pages})
	data := demoContent(1)
	sum := sha256.Sum256(data)
	c.b.manifestID(t, "/files/demo.bin")

	seeder := goPeer(t, "seeder@b", c.b.base, nil)
	seed(t, seeder, c.b.base+"/files/demo.bin", data)
	waitFor(t, 10*time.Second, "the seeder to join on b", func() bool { return c.b.localMembers(t) == 1 })
	waitFor(t, 5*time.Second, "a to count the seeder", func() bool { return c.a.stats(t).ClusterMembers == 1 })

	tctx, cancelTab := chromedp.NewContext(bctx)
	defer cancelTab()
	ctx, cancel := context.WithTimeout(tctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(c.a.base+"/index.html")); err != nil {
		t.Fatalf("opening the page: %v", err)
	}
	injected, err := chromedp.Run(ctx, chromedp.Poll[bool](`typeof peer5 === 'object' && !!document.querySelector('script[src*="client.js"]')`,
		chromedp.WithPollingTimeout(10*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil || !injected {
		t.Fatalf("the page of a has no injected client: %v", err)
	}
	start := time.Now()
	r, err := chromedp.Run(ctx, chromedp.Evaluate[tabResult](fetchJS, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("peer5.Request in the tab: %v", err)
	}
	t.Logf("tab on a: status %d, %d bytes from HTTP, %d from %d peers in %v; Go seeder on b uploaded %d",
		r.Status, r.Stats.FromHTTP, r.Stats.FromPeers, r.Stats.Peers, time.Since(start).Round(time.Millisecond), seeder.Uploaded())
	if r.Status != 200 || r.Size != fileSize || r.SHA != hex.EncodeToString(sum[:]) {
		t.Fatalf("tab on a: status %d %q, %d bytes, sha %s; want 200, %d bytes, sha %x", r.Status, r.Error, r.Size, r.SHA, fileSize, sum)
	}
	if r.Stats.FromPeers <= 0 || r.Stats.FromHTTP+r.Stats.FromPeers != fileSize {
		t.Fatalf("tab on a: %d bytes from peers, %d from HTTP; want some from the Go seeder on b, %d in all",
			r.Stats.FromPeers, r.Stats.FromHTTP, fileSize)
	}
}
