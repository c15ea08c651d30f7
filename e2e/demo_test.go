package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
)

// demoOptions change the demo site for a test.
type demoOptions struct {
	fileSize  string // demo.bin's size instead of 48MiB
	accessLog string // a file for Caddy's access log of the site
}

// startDemo runs the demo site exactly as Caddyfile.example describes it,
// on a free port instead of 8080, with no admin endpoint.
func startDemo(t *testing.T, o demoOptions) string {
	t.Helper()
	root := repoDir(t)
	raw, err := os.ReadFile(filepath.Join(root, "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", testcaddy.FreePort(t))
	demoDir := filepath.Join(root, "client", "demo")
	edits := []string{
		"http://localhost:8080 {", base + " {",
		"root * client/demo", "root * " + demoDir,
		"{\n\tauto_https off\n}\n", testcaddy.GlobalOptions(),
	}
	if o.fileSize != "" {
		edits = append(edits, "size 48MiB", "size "+o.fileSize)
	}
	if o.accessLog != "" {
		edits = append(edits, "\tencode\n", "\tlog {\n\t\toutput file "+o.accessLog+"\n\t}\n\tencode\n")
	}
	cfg := string(raw)
	for i := 0; i < len(edits); i += 2 {
		if !strings.Contains(cfg, edits[i]) {
			t.Fatalf("Caddyfile.example no longer has %q, which this test rewrites", edits[i])
		}
		cfg = strings.Replace(cfg, edits[i], edits[i+1], 1)
	}
	return testcaddy.StartCaddyfile(t, cfg, base)
}

// imageStats is what the image demo's request reports.
type imageStats struct {
	Size      int64 `json:"size"`
	FromHTTP  int64 `json:"bytesFromHttp"`
	FromPeers int64 `json:"bytesFromPeers"`
	Peers     int   `json:"peers"`
}

const imageDone = `document.getElementById('picture').complete && document.getElementById('picture').naturalWidth > 0 &&
	({ size: xhr.response.size, bytesFromHttp: xhr.stats.bytesFromHttp, bytesFromPeers: xhr.stats.bytesFromPeers, peers: xhr.stats.peers })`

// TestImageDemoSecondWindowFromPeers (issue 19): with the first window
// holding the whole picture, a second window of the image demo gets it
// from that window, not half of it from the throttled origin.
func TestImageDemoSecondWindowFromPeers(t *testing.T) {
	b := browser(t)
	base := startDemo(t, demoOptions{})
	first := tab(t, b, base+"/image.html")
	a := poll[imageStats](t, first, 60*time.Second, imageDone)
	t.Logf("first window: %+v", a)
	second := tab(t, b, base+"/image.html")
	s := poll[imageStats](t, second, 60*time.Second, imageDone)
	t.Logf("second window: %d of %d bytes from peers, %d from HTTP", s.FromPeers, s.Size, s.FromHTTP)
	// The first block comes by HTTP at once, by design (docs/PROTOCOL.md
	// §4.3); every other block is the first window's to give. Before the
	// fix the second HTTP worker also took a block before any neighbour
	// could answer: 524288 or more bytes by HTTP.
	const blockSize = 256 << 10
	if s.FromHTTP > blockSize || s.FromPeers+s.FromHTTP != s.Size {
		t.Errorf("second window: %d of %d bytes from peers, %d from HTTP; want all but the first block (%d bytes) from the first window", s.FromPeers, s.Size, s.FromHTTP, blockSize)
	}
}

// swarmNow is the coordinator's live view in GET {prefix}dashboard/stats.
type swarmNow struct {
	Peers     int   `json:"peers"`
	Members   int   `json:"members"`
	Swarms    int   `json:"swarms"`
	FromHTTP  int64 `json:"bytesFromHttp"`
	FromPeers int64 `json:"bytesFromPeers"`
	Uploaded  int64 `json:"bytesUploaded"`
}

// pageTotals is peer5.stats() of a page.
type pageTotals struct {
	FromHTTP  int64 `json:"bytesFromHttp"`
	FromPeers int64 `json:"bytesFromPeers"`
	Uploaded  int64 `json:"bytesUploaded"`
}

func coordinatorNow(t *testing.T, base string) swarmNow {
	t.Helper()
	return readStats[struct {
		Swarm swarmNow `json:"swarm"`
	}](t, base, "").Swarm
}

// Marks a page restored from the back/forward cache, and counts the
// peer connections it creates.
const bfcacheProbe = `addEventListener('pageshow', (e) => { if (e.persisted) window.restored = (window.restored || 0) + 1; });
	window.rtcCreated = 0;
	if (window.RTCPeerConnection) window.RTCPeerConnection = new Proxy(window.RTCPeerConnection, { construct(T, args) { window.rtcCreated++; return new T(...args); } });`

// TestPageInBackForwardCacheLeavesSwarms (issue 19): a window that navigates
// away leaves its swarms, even while the browser keeps the page frozen in
// its back/forward cache: the coordinator stops counting it and suggests it
// to nobody. Going back brings the page out of the cache and into its swarm
// again.
func TestPageInBackForwardCacheLeavesSwarms(t *testing.T) {
	b := browser(t)
	base := startDemo(t, demoOptions{})
	first := tab(t, b, base+"/image.html", bfcacheProbe)
	var notCached []string
	if err := chromedp.Listen(first, func(ev any) {
		if e, ok := ev.(*page.EventBackForwardCacheNotUsed); ok {
			for _, r := range e.NotRestoredExplanations {
				notCached = append(notCached, string(r.Reason))
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	poll[imageStats](t, first, 60*time.Second, imageDone)
	waitUntil(t, 10*time.Second, "the first window in its swarm", func() bool { return coordinatorNow(t, base).Members == 1 })

	if err := chromedp.Do(first, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	var left swarmNow
	waitUntil(t, 10*time.Second, "the page left behind to leave its swarm", func() bool {
		left = coordinatorNow(t, base)
		return left.Members == 0 && left.Peers == 0
	})

	visitor := tab(t, b, base+"/image.html", bfcacheProbe)
	v := poll[imageStats](t, visitor, 60*time.Second, imageDone)
	if rtc := eval[int](t, visitor, 5*time.Second, "window.rtcCreated"); rtc != 0 || v.FromPeers != 0 {
		t.Errorf("the next visitor made %d peer connections and got %d bytes from peers: the frozen page was suggested", rtc, v.FromPeers)
	}

	if _, err := chromedp.Run(first, chromedp.Evaluate[any]("history.back()")); err != nil {
		t.Fatal(err)
	}
	// Across a history navigation the page's execution context changes
	// under a running poll: evaluate afresh each time.
	waitUntil(t, 20*time.Second, "the page to come back from the cache", func() bool {
		ctx, cancel := context.WithTimeout(first, 2*time.Second)
		defer cancel()
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("window.restored >= 1"))
		return err == nil && ok
	})
	if len(notCached) > 0 {
		t.Fatalf("the page did not come from the back/forward cache: %v", notCached)
	}
	waitUntil(t, 10*time.Second, "the restored page to rejoin", func() bool { return coordinatorNow(t, base).Members == 2 })

	// Back in its swarm, the page serves a newcomer (the other visitor has
	// gone), and the coordinator's byte counts still add up to the pages':
	// a rejoined page does not send again what it told before it left.
	seen := eval[pageTotals](t, visitor, 5*time.Second, "peer5.stats()")
	closeTab(t, visitor)
	waitUntil(t, 10*time.Second, "the visitor to leave", func() bool { return coordinatorNow(t, base).Members == 1 })
	third := tab(t, b, base+"/image.html")
	if s := poll[imageStats](t, third, 60*time.Second, imageDone); s.FromPeers == 0 {
		t.Errorf("the newcomer got nothing from the restored page: %+v", s)
	}
	var want pageTotals
	for _, p := range []pageTotals{seen, eval[pageTotals](t, first, 5*time.Second, "peer5.stats()"), eval[pageTotals](t, third, 5*time.Second, "peer5.stats()")} {
		want.FromHTTP, want.FromPeers, want.Uploaded = want.FromHTTP+p.FromHTTP, want.FromPeers+p.FromPeers, want.Uploaded+p.Uploaded
	}
	var got swarmNow
	waitUntil(t, 20*time.Second, fmt.Sprintf("the coordinator's byte counts to equal the pages' %+v", want), func() bool {
		got = coordinatorNow(t, base)
		if got.FromHTTP > want.FromHTTP || got.FromPeers > want.FromPeers || got.Uploaded > want.Uploaded {
			t.Fatalf("the coordinator counts %+v, more than the pages' %+v", got, want)
		}
		return got.FromHTTP == want.FromHTTP && got.FromPeers == want.FromPeers && got.Uploaded == want.Uploaded
	})
}

// closeTab closes a tab as a visitor would: the page gets pagehide.
func closeTab(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := chromedp.Do(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, page.Close, cdp.Empty{})
		return chromedp.Void{}, err
	}); err != nil {
		t.Fatalf("closing the tab: %v", err)
	}
}

// TestDownloadDemoSavesAndRepeats (issue 19): the file downloader's
// Download saves the file; pressed again, it says the file is already here
// instead of showing zeros, and the bar keeps its colours, which a legend
// explains.
func TestDownloadDemoSavesAndRepeats(t *testing.T) {
	b := browser(t)
	downloads := allowDownloads(t, b)
	base := startDemo(t, demoOptions{fileSize: "4MiB"})
	size, sum := fileSHA256(t, base+"/files/demo.bin")
	ctx := tab(t, b, base+"/download.html")
	sizeWindow(t, ctx, 1000, 700)
	status := func() string {
		return eval[string](t, ctx, 5*time.Second, "document.getElementById('status').textContent")
	}

	if err := chromedp.Do(ctx, chromedp.Click("#start")); err != nil {
		t.Fatal(err)
	}
	poll[bool](t, ctx, 60*time.Second, `document.getElementById('status').textContent.startsWith('done')`)
	if got := savedFile(t, downloads, "demo.bin", int(size)); shaHex(got) != sum {
		t.Fatalf("the saved demo.bin differs from the origin's")
	}
	first := eval[string](t, ctx, 5*time.Second, "document.getElementById('http').textContent")
	t.Logf("first press: %q, from HTTP %s", status(), first)

	if err := chromedp.Do(ctx, chromedp.Click("#start")); err != nil {
		t.Fatal(err)
	}
	poll[bool](t, ctx, 30*time.Second, `!document.getElementById('status').textContent.startsWith('done')`)
	if got := savedFile(t, downloads, "demo.bin", int(size)); shaHex(got) != sum {
		t.Fatalf("the second save differs from the origin's")
	}
	if st := status(); !strings.Contains(st, "already here (from this page’s copy)") {
		t.Errorf("second press: status %q, want it to say the file is already here", st)
	}
	if again := eval[string](t, ctx, 5*time.Second, "document.getElementById('http').textContent"); again != first {
		t.Errorf("second press: from HTTP %q, want the first download's %q kept", again, first)
	}

	img, file := screenshot(t, ctx, "download.png")
	bar, legend := box(t, ctx, "#bar"), box(t, ctx, ".legend")
	// The first download was all HTTP (no other window): a full blue bar.
	if n, want := countNear(img, bar, demoHTTPColour), bar.Dx()*bar.Dy()*3/4; n < want {
		t.Errorf("the bar has %d of %d pixels in the HTTP colour, want %d (see %s)", n, bar.Dx()*bar.Dy(), want, file)
	}
	if h, p := countNear(img, legend, demoHTTPColour), countNear(img, legend, demoPeersColour); h < 30 || p < 30 {
		t.Errorf("the legend has %d HTTP and %d peer pixels, want a swatch of each (see %s)", h, p, file)
	}
}

// The bar colours of client/demo/demo.css.
var (
	demoHTTPColour  = [3]int{0x5b, 0x8d, 0xef}
	demoPeersColour = [3]int{0x3c, 0xb3, 0x71}
)

// TestDemoPagesAskForNothingMissing (issue 19): every demo page, the
// dashboard included, names an icon that exists, so the browser asks for
// no /favicon.ico (a 404 in the console of every page before), and no
// request of any page is answered 404.
func TestDemoPagesAskForNothingMissing(t *testing.T) {
	b := browser(t)
	logFile := filepath.Join(t.TempDir(), "access.log")
	base := startDemo(t, demoOptions{fileSize: "1MiB", accessLog: logFile})
	type entry struct {
		Request struct {
			URI string `json:"uri"`
		} `json:"request"`
		Status int `json:"status"`
	}
	logged := func() []entry {
		data, _ := os.ReadFile(logFile)
		var out []entry
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var e entry
			if json.Unmarshal([]byte(line), &e) == nil && e.Request.URI != "" {
				out = append(out, e)
			}
		}
		return out
	}
	asked := func(uri string) int {
		n := 0
		for _, e := range logged() {
			if e.Request.URI == uri {
				n++
			}
		}
		return n
	}
	for page, icon := range map[string]string{"/": "/favicon.svg", "/image.html": "/favicon.svg", "/download.html": "/favicon.svg",
		"/auto.html": "/favicon.svg", "/_p2pxhr/dashboard": "/_p2pxhr/dashboard.svg"} {
		// A browser context of its own: no icon from another page's cache.
		ctx, cancel := chromedp.NewContext(b, chromedp.WithNewBrowserContext())
		before := asked(icon)
		if err := chromedp.Do(ctx, chromedp.Navigate(base+page)); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 20*time.Second, page+" to ask for its icon "+icon, func() bool { return asked(icon) > before })
		cancel()
	}
	for _, e := range logged() {
		if e.Status == http.StatusNotFound {
			t.Errorf("%s answered 404", e.Request.URI)
		}
	}
}

// autoProbe runs before the auto demo's scripts: it lowers the size from
// which links are saved to disk, replaces the save picker (a headless
// browser cancels every real one) by one that hands out a file in the
// origin private file system, unless window.useRealPicker is set, and
// records blob URLs, progress events and the link's width as it changes.
const autoProbe = `window.peer5 = { config: { diskSaveMin: 1 << 20 } };
	{
		const real = window.showSaveFilePicker;
		window.pickedNames = [];
		window.showSaveFilePicker = async (opts) => {
			if (window.useRealPicker) return real.call(window, opts);
			window.pickedNames.push(opts.suggestedName);
			return (await navigator.storage.getDirectory()).getFileHandle(opts.suggestedName, { create: true });
		};
		const create = URL.createObjectURL;
		window.blobSizes = [];
		URL.createObjectURL = (b) => { window.blobSizes.push(b.size); return create(b); };
		window.progress = [];
		window.states = [];
		new MutationObserver((rs) => { for (const r of rs) if (r.target.localName === 'a') window.states.push(r.target.dataset.p2pxhr || ''); })
			.observe(document, { subtree: true, attributes: true, attributeFilter: ['data-p2pxhr'] });
		document.addEventListener('progress', (e) => {
			if (e.target.localName === 'a') window.progress.push({ loaded: e.loaded, total: e.total, pct: e.target.dataset.p2pxhrProgress, width: e.target.getBoundingClientRect().width });
		}, true);
	}`

// TestAutoLinkShowsProgressAndWritesToDisk (issue 19): a link in auto
// mode shows its progress at once (data-p2pxhr-progress, progress events,
// and the default indicator after its text), and with the File System
// Access API the file is written where the visitor picked, with no blob
// URL of the whole file; a cancelled picker saves nothing.
func TestAutoLinkShowsProgressAndWritesToDisk(t *testing.T) {
	b := browser(t)
	base := startDemo(t, demoOptions{fileSize: "8MiB"})
	size, sum := fileSHA256(t, base+"/files/demo.bin")
	ctx := tab(t, b, base+"/auto.html", autoProbe)
	link := `document.querySelector('a[download]')`
	idle := eval[float64](t, ctx, 5*time.Second, link+`.getBoundingClientRect().width`)

	// The real picker, which the headless browser cancels: no file, the
	// link as it was.
	eval[bool](t, ctx, 5*time.Second, `window.useRealPicker = true`)
	if err := chromedp.Do(ctx, chromedp.Click("a[download]")); err != nil {
		t.Fatal(err)
	}
	poll[bool](t, ctx, 30*time.Second, `window.states.join() === 'loading,' && !`+link+`.hasAttribute('data-p2pxhr-progress')`)
	if n := eval[int](t, ctx, 5*time.Second, `window.blobSizes.filter((s) => s === `+strconv.FormatInt(size, 10)+`).length`); n != 0 {
		t.Errorf("a cancelled save still made %d blob URLs of the file", n)
	}

	eval[bool](t, ctx, 5*time.Second, `(window.useRealPicker = false, window.progress = [], true)`)
	if err := chromedp.Do(ctx, chromedp.Click("a[download]")); err != nil {
		t.Fatal(err)
	}
	poll[bool](t, ctx, 60*time.Second, link+`.dataset.p2pxhr === 'p2p'`)
	type step struct {
		Loaded float64 `json:"loaded"`
		Total  float64 `json:"total"`
		Pct    string  `json:"pct"`
		Width  float64 `json:"width"`
	}
	steps := eval[[]step](t, ctx, 5*time.Second, `window.progress`)
	if len(steps) < 2 || steps[len(steps)-1].Loaded != float64(size) || steps[0].Total != float64(size) {
		t.Fatalf("progress events %+v; want several, up to %d", steps, size)
	}
	if steps[0].Width <= idle {
		t.Errorf("while loading the link is %v px wide, as wide as idle (%v): no indicator shown", steps[0].Width, idle)
	}
	if st := eval[string](t, ctx, 5*time.Second, `(a => (a.dataset.p2pxhrProgress || '') + '|' + a.getBoundingClientRect().width)(`+link+`)`); st != "|"+strconv.FormatFloat(idle, 'f', -1, 64) {
		t.Errorf("after the download the link is %q (progress|width), want no progress and its idle width %v", st, idle)
	}
	got := eval[string](t, ctx, 30*time.Second, `(async () => {
		const f = await (await (await navigator.storage.getDirectory()).getFileHandle('demo.bin')).getFile();
		const d = new Uint8Array(await crypto.subtle.digest('SHA-256', await f.arrayBuffer()));
		return f.size + ' ' + Array.from(d, (x) => x.toString(16).padStart(2, '0')).join('');
	})()`)
	if want := strconv.FormatInt(size, 10) + " " + sum; got != want {
		t.Errorf("the file written to disk: %s, want %s", got, want)
	}
	if n := eval[int](t, ctx, 5*time.Second, `window.blobSizes.filter((s) => s === `+strconv.FormatInt(size, 10)+`).length`); n != 0 {
		t.Errorf("the file went through %d blob URLs of its whole size", n)
	}
	if names := eval[[]string](t, ctx, 5*time.Second, `window.pickedNames`); len(names) != 1 || names[0] != "demo.bin" {
		t.Errorf("the picker suggested %q, want the link's download name once", names)
	}
}
