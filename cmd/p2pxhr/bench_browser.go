package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser side of bench: visitors that are headless Chromium
// processes, each with a profile of its own, loading the client as a
// site's page does and downloading with peer5.fetch (or plain fetch for
// the HTTP-only phase).

// benchPagePath is the bench site's page: nothing but the client.
const benchPagePath = "/bench/page.html"

const benchPage = `<!doctype html><meta charset="utf-8"><title>p2pxhr bench</title><script src="/_p2pxhr/client.js"></script>`

// benchBrowser is one Chromium process with its own profile.
type benchBrowser struct {
	ctx    context.Context // the browser's first tab
	cancel context.CancelFunc
	dir    string
}

// launchBenchBrowser starts Chromium headless with the flags the team's
// testing notes give for a machine without outside network, plus loopback
// WebRTC between separate browser processes.
func launchBenchBrowser(ctx context.Context, exe string) (*benchBrowser, error) {
	dir, err := os.MkdirTemp("", "p2pxhr-bench-chromium-*")
	if err != nil {
		return nil, err
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(dir),
		chromedp.Flag("headless", "new"),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		// Separate browser processes do not resolve each other's mDNS
		// host names on loopback; show them the addresses instead.
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	b := &benchBrowser{ctx: bctx, dir: dir, cancel: func() { cancelBrowser(); cancelAlloc() }}
	start, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- chromedp.Do(bctx) }()
	select {
	case err = <-errc:
	case <-start.Done():
		err = start.Err()
	}
	if err != nil {
		b.close()
		return nil, fmt.Errorf("starting Chromium (%s): %w", exe, err)
	}
	return b, nil
}

func (b *benchBrowser) close() {
	b.cancel()
	os.RemoveAll(b.dir)
}

// navigate loads url in the browser's tab.
func (b *benchBrowser) navigate(ctx context.Context, url string) error {
	ctx, cancel := mergedTimeout(ctx, b.ctx, 60*time.Second)
	defer cancel()
	return chromedp.Do(ctx, chromedp.Navigate(url))
}

// eval runs a JavaScript expression in the tab, awaiting its promise.
func evalIn[T any](ctx context.Context, b *benchBrowser, d time.Duration, expr string) (T, error) {
	ctx, cancel := mergedTimeout(ctx, b.ctx, d)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// mergedTimeout is the browser's context bounded by d and cancelled with
// outer as well.
func mergedTimeout(outer, browser context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(browser, d)
	stop := context.AfterFunc(outer, cancel)
	return ctx, func() { stop(); cancel() }
}

// pageDownload is what benchDownloadJS resolves to.
type pageDownload struct {
	Ms        float64 `json:"ms"`
	Size      int64   `json:"size"`
	SHA       string  `json:"sha"`
	FromHTTP  int64   `json:"fromHttp"`
	FromPeers int64   `json:"fromPeers"`
	Error     string  `json:"error"`
}

// benchDownloadJS downloads url in the page, timing the transfer (not the
// hash that follows): with P2P through peer5.fetch, else with the
// browser's own fetch, as a site without P2PXHR would.
func benchDownloadJS(url string, p2p bool) string {
	fetchCall := "fetch(url, {cache: 'no-store'})"
	if p2p {
		fetchCall = "peer5.fetch(url)"
	}
	return `(async (url) => {
  try {
    const t0 = performance.now();
    const res = await ` + fetchCall + `;
    if (!res.ok) return {error: 'HTTP ' + res.status};
    const buf = await res.arrayBuffer();
    const ms = performance.now() - t0;
    const sum = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
    const sha = Array.from(sum, (x) => x.toString(16).padStart(2, '0')).join('');
    const s = res.stats || {bytesFromHttp: buf.byteLength, bytesFromPeers: 0};
    return {ms, size: buf.byteLength, sha, fromHttp: s.bytesFromHttp, fromPeers: s.bytesFromPeers};
  } catch (e) {
    return {error: String(e)};
  }
})(` + strconv.Quote(url) + `)`
}

// launchBenchBrowsers starts n browsers at once (their start-up is not
// part of any figure); on error none is left running.
func launchBenchBrowsers(ctx context.Context, exe string, n int) ([]*benchBrowser, error) {
	bs := make([]*benchBrowser, n)
	errs := make([]error, n)
	done := make(chan int, n)
	for i := range n {
		go func() {
			bs[i], errs[i] = launchBenchBrowser(ctx, exe)
			done <- i
		}()
	}
	for range n {
		<-done
	}
	if err := errors.Join(errs...); err != nil {
		closeBenchBrowsers(bs)
		return nil, err
	}
	return bs, nil
}

func closeBenchBrowsers(bs []*benchBrowser) {
	for _, b := range bs {
		if b != nil {
			b.close()
		}
	}
}

// runBrowserPhase runs one phase with browsers as visitors: each loads the
// bench page of site, then at its arrival downloads the file (peer5.fetch
// when p2p, else plain fetch). Tabs stay open, and so seed, until every
// visitor is done.
func runBrowserPhase(ctx context.Context, bs []*benchBrowser, site *benchSite, cfg benchConfig, p2p bool,
	want [sha256.Size]byte, prog *benchProgress) (phaseResult, error) {
	n := len(bs)
	res := phaseResult{outcomes: make([]peerOutcome, n)}
	for _, b := range bs {
		if err := b.navigate(ctx, site.base+benchPagePath); err != nil {
			return res, fmt.Errorf("opening the bench page: %w", err)
		}
	}
	name := "HTTP only (browsers)"
	if p2p {
		name = "P2P (browsers)"
	}
	prog.startPhase(name, n, int64(n)*cfg.size)
	wantHex := hex.EncodeToString(want[:])
	done := make(chan struct{}, n)
	start := time.Now()
	for i, b := range bs {
		go func() {
			defer func() { done <- struct{}{} }()
			o := &res.outcomes[i]
			if o.err = waitArrival(ctx, start.Add(cfg.arrivalAt(i, n))); o.err != nil {
				return
			}
			d, err := evalIn[pageDownload](ctx, b, cfg.timeout, benchDownloadJS(site.fileURL(), p2p))
			switch {
			case err != nil:
				o.err = err
			case d.Error != "":
				o.err = errors.New(d.Error)
			case d.Size != cfg.size || d.SHA != wantHex:
				o.err = fmt.Errorf("copy differs from the origin's bytes (%d bytes, SHA-256 %.12s…)", d.Size, d.SHA)
			default:
				o.verified = true
			}
			o.seconds = d.Ms / 1000
			o.fromHTTP, o.fromPeers = d.FromHTTP, d.FromPeers
			prog.addLoaded(d.Size)
			prog.peerDone(false)
		}()
	}
	for range n {
		<-done
	}
	res.wall = time.Since(start)
	var err error
	res.originBytes, err = site.settledOriginBytes(ctx)
	if err == nil && p2p {
		res.ranges, err = site.rangesFromAccessLog("/files/demo.bin", start)
	}
	// Leave the page so the next phase starts from an empty tab.
	for _, b := range bs {
		_ = b.navigate(ctx, "about:blank")
	}
	return res, err
}

// processTreeRSS sums the resident memory of pid and its descendants, in
// bytes, from /proc (Linux): a browser's memory is spread over processes.
func processTreeRSS(pid int) int64 {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var total int64
	for stack := []int{pid}; len(stack) > 0; {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		total += processRSS(p)
		stack = append(stack, children[p]...)
	}
	return total
}

func processRSS(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// pid is the browser process's id.
func (b *benchBrowser) pid() int {
	if p := chromedp.FromContext(b.ctx).Browser.Process(); p != nil {
		return p.Pid
	}
	return 0
}
