package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/chromedp"

	"github.com/p2pxhr/p2pxhr/internal/browsertest"
	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
)

// The pages of the service worker tests, served by the origin (so the
// module injects the client, with data-sw). The landing page has nothing
// to share: a visitor's first page, which registers the worker.
const (
	swLanding = `<!doctype html><meta charset="utf-8"><title>landing</title><p>welcome</p>`
	swMedia   = `<!doctype html><meta charset="utf-8"><title>media</title>
<img id="pic" src="/media/pic.png" alt="noise">
<video id="v" src="/media/movie.mp4" controls muted playsinline preload="metadata"></video>`
	// swPlay autoplays the video and records when its first frame is
	// shown (ms after the navigation began): the time to first frame.
	swPlay = `<!doctype html><meta charset="utf-8"><title>play</title>
<video id="v" src="/media/movie.mp4" muted autoplay playsinline></video>
<script>const v = document.getElementById('v'); v.requestVideoFrameCallback(() => { window.firstFrame = performance.now(); });</script>`
	// A site with a service worker of its own, registered before the
	// client loads; ownWorker is that worker, which may import the module's.
	swOwn = `<!doctype html><meta charset="utf-8"><title>own worker</title>
<script>navigator.serviceWorker.register('/own-sw.js' + location.search, { scope: '/' });</script><p>own</p>`
	ownWorker = `if (new URL(location.href).searchParams.has('import')) importScripts('/_p2pxhr/sw.js');
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (e) => { if (new URL(e.request.url).pathname === '/own') e.respondWith(new Response('from the site\'s worker')); });`
)

// swOrigin is the origin behind the module in the service worker tests:
// pages, a noise image, a real video (ffmpeg) and a binary, served with
// validators and Range support, and a log of every request it got.
type swOrigin struct {
	URL string
	// delay is added before each answer: an origin farther away than
	// loopback (set before the first request).
	delay time.Duration
	files map[string][]byte
	mu    sync.Mutex
	log   []originRequest
}

// originRequest is one request the origin got. Dest is Sec-Fetch-Dest:
// "image" or "video" when the browser itself asked for the element's
// resource (natively, or passed through by the worker), "empty" for
// fetch() (the worker's and the page's range requests, manifest builds).
type originRequest struct {
	Path, Range, Dest string
}

func startSWOrigin(t *testing.T) *swOrigin {
	t.Helper()
	o := &swOrigin{files: map[string][]byte{
		"/media/pic.png":   noisePNG(t, 512),
		"/media/movie.mp4": makeVideo(t),
		"/files/big.bin":   noise(3 << 20),
		"/media/small.png": noisePNG(t, 16),
	}}
	pages := map[string]string{"/sw/landing.html": swLanding, "/sw/media.html": swMedia, "/sw/own.html": swOwn, "/sw/play.html": swPlay, "/own-sw.js": ownWorker}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.log = append(o.log, originRequest{r.URL.Path, r.Header.Get("Range"), r.Header.Get("Sec-Fetch-Dest")})
		o.mu.Unlock()
		time.Sleep(o.delay)
		if p, ok := pages[r.URL.Path]; ok {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			if strings.HasSuffix(r.URL.Path, ".js") {
				w.Header().Set("Content-Type", "text/javascript")
			}
			w.Write([]byte(p))
			return
		}
		data, ok := o.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", `"`+shaHex(data)[:16]+`"`)
		w.Header().Set("Cache-Control", "public, no-cache")
		http.ServeContent(w, r, filepath.Base(r.URL.Path), time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	o.URL = srv.URL
	return o
}

// mark is the log's length now; since(mark) the requests after it.
func (o *swOrigin) mark() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.log)
}

func (o *swOrigin) since(mark int) []originRequest {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]originRequest(nil), o.log[mark:]...)
}

// native lists the requests after mark for path that the page made for
// the bytes themselves: an element's (Sec-Fetch-Dest image, video...),
// or one the worker passed on (Chromium sends a worker's fetch(request)
// with Sec-Fetch-Dest: empty) for the whole file or an open range. The
// worker's own block requests (closed ranges) are not among them.
func (o *swOrigin) native(mark int, path string) []originRequest {
	var out []originRequest
	for _, r := range o.since(mark) {
		if r.Path == path && r.Dest != "" && (r.Dest != "empty" || r.Range == "" || strings.HasSuffix(r.Range, "-")) {
			out = append(out, r)
		}
	}
	return out
}

// browsers lists the requests after mark for path that came from a
// browser (with Sec-Fetch-Dest), not from the module itself.
func (o *swOrigin) browsers(mark int, path string) []originRequest {
	var out []originRequest
	for _, r := range o.since(mark) {
		if r.Path == path && r.Dest != "" {
			out = append(out, r)
		}
	}
	return out
}

// startSWSite runs the module in front of a new swOrigin with service
// worker mode and the given more subdirectives.
func startSWSite(t *testing.T, options ...string) (string, *swOrigin) {
	t.Helper()
	o := startSWOrigin(t)
	return testcaddy.Start(t, swCaddyfile(o, options...)), o
}

func swCaddyfile(o *swOrigin, options ...string) string {
	return fmt.Sprintf("p2pxhr {\n\tpaths /media/* /files/*\n\tdashboard\n\t%s\n}\nreverse_proxy %s",
		strings.Join(options, "\n\t"), strings.TrimPrefix(o.URL, "http://"))
}

// makeVideo encodes a real 120 s, 640×360 H.264 video with a key frame
// every second (ffmpeg, which test.sh installs), about 15 MB: 58 blocks.
// Long enough that a seek to its middle lies beyond what Chromium has read
// ahead of playback (about 5 MB here), so the seek is a new Range request.
func makeVideo(t *testing.T) []byte {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv(browsertest.RequireEnv) == "1" {
			t.Fatal("ffmpeg is not installed")
		}
		t.Skip("ffmpeg is not installed")
	}
	out := filepath.Join(t.TempDir(), "movie.mp4")
	cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-t", "120", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-b:v", "1000k",
		"-movflags", "+faststart", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// swStats is peer5.stats().serviceWorker.
type swStats struct {
	Requests       int64 `json:"requests"`
	BytesFromHTTP  int64 `json:"bytesFromHttp"`
	BytesFromPeers int64 `json:"bytesFromPeers"`
	BytesFromCache int64 `json:"bytesFromCache"`
}

// controlled opens url in a new tab of browser b as its visitor (cache
// and all), first on the landing page until the worker controls it: the
// visitor's second page is the one served through the worker.
func controlled(t *testing.T, b context.Context, base, url string, before ...string) context.Context {
	t.Helper()
	ctx := visitorTab(t, b, base+"/sw/landing.html", before...)
	eval[bool](t, ctx, 20*time.Second, "navigator.serviceWorker.ready.then((r) => !!r.active)")
	navigate(t, ctx, base+url)
	poll[bool](t, ctx, 10*time.Second, "document.readyState === 'complete' && !!navigator.serviceWorker.controller")
	return ctx
}

// stopWorkers stops the browser's service workers, as the browser does
// to idle ones: the next request starts the worker afresh.
func stopWorkers(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := chromedp.Do(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, tg, serviceworker.Enable, cdp.Empty{}); err != nil {
			return chromedp.Void{}, err
		}
		_, err := cdp.Call(ctx, tg, serviceworker.StopAllWorkers, cdp.Empty{})
		return chromedp.Void{}, err
	}); err != nil {
		t.Fatalf("stopping the service workers: %v", err)
	}
}

// fetchSHA fetches url in the page (init: fetch's options as JS) and
// returns its status, headers asked for and the SHA-256 of its body.
type fetched struct {
	Status       int    `json:"status"`
	ContentRange string `json:"contentRange"`
	Length       int    `json:"length"`
	SHA          string `json:"sha"`
	Error        string `json:"error"`
}

func fetchSHA(t *testing.T, ctx context.Context, url, init string) fetched {
	t.Helper()
	return eval[fetched](t, ctx, 60*time.Second, `fetch(`+js(url)+`, `+init+`).then(async (r) => { const b = await r.arrayBuffer();
		const d = await crypto.subtle.digest('SHA-256', b);
		return { status: r.status, contentRange: r.headers.get('content-range') || '', length: b.byteLength,
			sha: Array.from(new Uint8Array(d), (x) => x.toString(16).padStart(2, '0')).join('') }; }, (e) => ({ error: String(e) }))`)
}
