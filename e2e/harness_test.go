package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	_ "github.com/p2pxhr/p2pxhr/caddymodule"
	_ "github.com/p2pxhr/p2pxhr/cmd/p2pxhr/demofiles"
	"github.com/p2pxhr/p2pxhr/internal/browsertest"
	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
)

// repoDir is the repository root, found from this file so tests work from
// any working directory.
func repoDir(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Dir(filepath.Dir(file))
}

// browser starts one headless Chromium for the test, or skips it.
func browser(t *testing.T) context.Context { return browsertest.Start(t) }

// oneVisitorPerTab turns the persistent cache off: the tabs of one browser
// share it (they are one visitor), and most tests play a visitor per tab.
const oneVisitorPerTab = `window.peer5 = { config: { cacheSize: 0 } };`

// tab opens a new tab on url, a visitor of its own (no persistent cache:
// see visitorTab). Scripts in before run in the page before any of its own
// (to take WebRTC or WebSocket away, say).
func tab(t *testing.T, bctx context.Context, url string, before ...string) context.Context {
	t.Helper()
	return visitorTab(t, bctx, url, append([]string{oneVisitorPerTab}, before...)...)
}

// visitorTab opens a new tab on url as the browser's visitor, persistent
// cache and all.
func visitorTab(t *testing.T, bctx context.Context, url string, before ...string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx)
	t.Cleanup(cancel)
	var steps []chromedp.Action[chromedp.Void]
	for _, src := range before {
		steps = append(steps, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: src})
			return chromedp.Void{}, err
		})
	}
	steps = append(steps, chromedp.Navigate(url))
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	return ctx
}

// tabCtx is a chromedp context bound to one tab.
type tabCtx = context.Context

// eval runs an expression (awaiting a promise) in the tab, bounded by d.
func eval[T any](t *testing.T, ctx context.Context, d time.Duration, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %.120s: %v", expr, err)
	}
	return v
}

// siteOptions shape the test site.
type siteOptions struct {
	rateLimit string   // http_rate_limit, e.g. "8MB/s"; empty for none
	fileSize  string   // size of /files/demo.bin
	dataDir   string   // served at /data/ when set
	inject    bool     // inject the client tag into pages (off: pages load it themselves)
	options   []string // more p2pxhr subdirectives, one a line ("ab 50", "dashboard")
	metrics   bool     // Caddy's metrics at /metrics
}

// startSite runs Caddy with the module (its manifests, client.js and
// coordinator WebSocket) in front of the demo files, the client's sources
// and test pages (/src/, /test/) and the protocol vectors (/vectors/).
func startSite(t *testing.T, o siteOptions) string {
	t.Helper()
	root := repoDir(t)
	var b strings.Builder
	b.WriteString("route {\n")
	if o.metrics {
		b.WriteString("\tmetrics /metrics\n")
	}
	b.WriteString("\tp2pxhr {\n")
	// The tests read the operators' figures at {prefix}dashboard/stats.
	b.WriteString("\t\tdashboard\n")
	if !o.inject {
		b.WriteString("\t\tinject off\n")
	}
	if o.rateLimit != "" {
		fmt.Fprintf(&b, "\t\thttp_rate_limit %s\n", o.rateLimit)
	}
	for _, l := range o.options {
		fmt.Fprintf(&b, "\t\t%s\n", l)
	}
	b.WriteString("\t}\n")
	fmt.Fprintf(&b, "\thandle /files/* {\n\t\tp2pxhr_demo_files {\n\t\t\tsize %s\n\t\t}\n\t}\n", o.fileSize)
	fmt.Fprintf(&b, "\thandle_path /vectors/* {\n\t\troot * %s\n\t\tfile_server\n\t}\n", filepath.Join(root, "protocol", "testdata"))
	if o.dataDir != "" {
		fmt.Fprintf(&b, "\thandle_path /data/* {\n\t\troot * %s\n\t\tfile_server\n\t}\n", o.dataDir)
	}
	fmt.Fprintf(&b, "\thandle {\n\t\troot * %s\n\t\tfile_server\n\t}\n}\n", filepath.Join(root, "client"))
	return testcaddy.Start(t, b.String())
}

// poll waits until expr is truthy in the tab (checked every 50 ms, at most
// d) and returns its value: no fixed sleeps.
func poll[T any](t *testing.T, ctx context.Context, d time.Duration, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		diag, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({url: location.href, stats: window.peer5 && peer5.stats()})`))
		t.Fatalf("waiting for %.160s: %v (page: %s)", expr, err, diag)
	}
	return v
}

// waitUntil polls a Go condition every 50 ms for at most d.
func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fileSHA256 fetches url from Go and returns its size and SHA-256: the
// bytes every browser result must equal.
func fileSHA256(t *testing.T, u string) (int64, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, res.Body)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", u, res.StatusCode, err)
	}
	return n, hex.EncodeToString(h.Sum(nil))
}

// js quotes s as a JavaScript string literal (Go's quoting is valid JS
// for the ASCII URLs and names tests pass).
func js(s string) string { return strconv.Quote(s) }

// readStats decodes GET {prefix}dashboard/stats (with query, e.g. "?history=0") into
// a T holding the parts a test reads.
func readStats[T any](t *testing.T, base, query string) T {
	t.Helper()
	var v T
	res, err := http.Get(base + "/_p2pxhr/dashboard/stats" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET stats%s: %d %v", query, res.StatusCode, err)
	}
	return v
}
