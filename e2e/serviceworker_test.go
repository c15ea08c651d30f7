package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
)

// playing waits until the page's <video> plays on from at least from
// seconds, and returns its currentTime.
func playing(t *testing.T, ctx tabCtx, from float64) float64 {
	t.Helper()
	return poll[float64](t, ctx, 30*time.Second, fmt.Sprintf(`(v => !v.paused && v.currentTime > %g && v.currentTime)(document.getElementById('v'))`, from))
}

// TestServiceWorkerImageAndVideo (issue 17): with `service_worker on`, a
// page with a plain <img src> and <video src controls> and no page code:
// visitor A's copy goes through the worker; visitor B (another browser)
// then gets the image with no request of its own to the origin, plays the
// video, seeks to the middle and plays on, with bytes from peers (A).
func TestServiceWorkerImageAndVideo(t *testing.T) {
	base, origin := startSWSite(t, "service_worker on")
	movie, pic := origin.files["/media/movie.mp4"], origin.files["/media/pic.png"]

	a := controlled(t, browser(t), base, "/sw/media.html")
	poll[bool](t, a, 30*time.Second, "(i => i.complete && i.naturalWidth === 512)(document.getElementById('pic'))")
	whole := fetchSHA(t, a, "/media/movie.mp4", "{}")
	if whole.Status != 200 || whole.SHA != shaHex(movie) {
		t.Fatalf("A's fetch of the movie: %+v; want 200 and the origin's %d bytes", whole, len(movie))
	}
	sa := poll[swStats](t, a, 10*time.Second, "(s => s.requests >= 3 && s)(peer5.stats().serviceWorker)")
	t.Logf("A: %+v", sa)

	b := browser(t)
	landing := visitorTab(t, b, base+"/sw/landing.html")
	eval[bool](t, landing, 20*time.Second, "navigator.serviceWorker.ready.then((r) => !!r.active)")
	mark := origin.mark()
	navigate(t, landing, base+"/sw/media.html")
	poll[bool](t, landing, 30*time.Second, "(i => i.complete && i.naturalWidth === 512)(document.getElementById('pic'))")
	if n := origin.native(mark, "/media/pic.png"); len(n) > 0 {
		t.Errorf("the image was asked of the origin by the page itself: %+v", n)
	}

	eval[bool](t, landing, 10*time.Second, "document.getElementById('v').play().then(() => true)")
	playing(t, landing, 1)
	duration := eval[float64](t, landing, 5*time.Second, "document.getElementById('v').duration")
	before := eval[swStats](t, landing, 5*time.Second, "peer5.stats().serviceWorker")
	eval[bool](t, landing, 5*time.Second, fmt.Sprintf("(document.getElementById('v').currentTime = %g, true)", duration/2))
	at := playing(t, landing, duration/2+1)
	if at > duration/2+15 { // the seek went where asked, not played there
		t.Errorf("after seeking to %gs the video is at %gs", duration/2, at)
	}
	if after := eval[swStats](t, landing, 5*time.Second, "peer5.stats().serviceWorker"); after.Requests <= before.Requests {
		t.Errorf("the seek made no new request through the worker: %d before, %d after", before.Requests, after.Requests)
	}
	sb := poll[swStats](t, landing, 20*time.Second, "(s => s.bytesFromPeers > 0 && s)(peer5.stats().serviceWorker)")
	t.Logf("B: %+v", sb)
	if n := origin.native(mark, "/media/movie.mp4"); len(n) > 0 {
		t.Errorf("the video was asked of the origin by the page itself: %+v", n)
	}
	_ = pic
	// Operators see it: the worker's reports (one per response; the seek
	// ended one) on the dashboard's JSON.
	waitUntil(t, 20*time.Second, "the worker's bytes from peers on the dashboard's stats", func() bool {
		var st struct {
			ServiceWorker swStats `json:"serviceWorker"`
		}
		_, body := testcaddy.Get(t, base+"/_p2pxhr/dashboard/stats")
		return json.Unmarshal(body, &st) == nil && st.ServiceWorker.Requests > 0 && st.ServiceWorker.BytesFromPeers > 0
	})
}

// TestServiceWorkerRange (issue 17): a Range request through the worker
// gets exactly those bytes, with 206 and the Content-Range of the file.
func TestServiceWorkerRange(t *testing.T) {
	base, origin := startSWSite(t, "service_worker on")
	big := origin.files["/files/big.bin"]
	ctx := controlled(t, browser(t), base, "/sw/landing.html?again")
	got := fetchSHA(t, ctx, "/files/big.bin", `{headers: {Range: 'bytes=1000000-1999999'}}`)
	want := fmt.Sprintf("bytes 1000000-1999999/%d", len(big))
	if got.Status != 206 || got.ContentRange != want || got.Length != 1000000 || got.SHA != shaHex(big[1000000:2000000]) {
		t.Fatalf("range through the worker: %+v; want 206, %s, 1000000 bytes of the file", got, want)
	}
	// Five blocks of 256 KiB hold the range.
	poll[swStats](t, ctx, 10*time.Second, "(s => s.requests === 1 && s.bytesFromHttp + s.bytesFromPeers + s.bytesFromCache === 5 * 262144 && s)(peer5.stats().serviceWorker)")
}

// TestServiceWorkerFallbacks (issue 17): whatever the worker cannot do,
// the page gets the bytes it would have got without the module.
func TestServiceWorkerFallbacks(t *testing.T) {
	base, origin := startSWSite(t, "service_worker on")
	big, movie := origin.files["/files/big.bin"], origin.files["/media/movie.mp4"]

	// A first visit: no worker yet, so the page's image and video come
	// natively, and stay so for the page's life (the worker claims no
	// page: a <video> that began natively must not switch sources); its
	// seek is the network's too. The visitor's next page is the worker's.
	t.Run("first visit", func(t *testing.T) {
		mark := origin.mark()
		ctx := visitorTab(t, browser(t), base+"/sw/media.html")
		poll[bool](t, ctx, 30*time.Second, "(i => i.complete && i.naturalWidth === 512)(document.getElementById('pic'))")
		if len(origin.native(mark, "/media/pic.png")) == 0 {
			t.Errorf("the first visit's image did not come natively")
		}
		eval[bool](t, ctx, 10*time.Second, "document.getElementById('v').play().then(() => true)")
		playing(t, ctx, 1)
		eval[bool](t, ctx, 20*time.Second, "navigator.serviceWorker.ready.then((r) => !!r.active)")
		eval[bool](t, ctx, 5*time.Second, "(document.getElementById('v').currentTime = 60, true)")
		playing(t, ctx, 61)
		if s := eval[swStats](t, ctx, 5*time.Second, "peer5.stats().serviceWorker"); s.Requests != 0 || eval[bool](t, ctx, 5*time.Second, "!!navigator.serviceWorker.controller") {
			t.Errorf("the worker took over the first page: %+v", s)
		}
		navigate(t, ctx, base+"/sw/media.html")
		poll[bool](t, ctx, 10*time.Second, "!!navigator.serviceWorker.controller")
		eval[bool](t, ctx, 10*time.Second, "document.getElementById('v').play().then(() => true)")
		playing(t, ctx, 1)
		poll[swStats](t, ctx, 10*time.Second, "(s => s.requests >= 1 && s)(peer5.stats().serviceWorker)")
	})

	// The browser stops idle workers (here: all of them, by DevTools): the
	// next request starts the worker afresh and is served as before; a
	// video playing through the worker plays on when its worker is
	// stopped mid-stream (the media element asks again).
	t.Run("worker stopped", func(t *testing.T) {
		ctx := controlled(t, browser(t), base, "/sw/media.html")
		eval[bool](t, ctx, 10*time.Second, "document.getElementById('v').play().then(() => true)")
		at := playing(t, ctx, 1)
		stopWorkers(t, ctx)
		playing(t, ctx, at+3)
		stopWorkers(t, ctx)
		got := fetchSHA(t, ctx, "/files/big.bin", "{}")
		if got.Status != 200 || got.SHA != shaHex(big) {
			t.Fatalf("after the worker was stopped: %+v", got)
		}
		poll[swStats](t, ctx, 10*time.Second, "(s => s.requests >= 1 && s)(peer5.stats().serviceWorker)")
	})

	// A page without WebRTC cannot carry the swarm: the worker fetches
	// by HTTP ranges itself.
	t.Run("no WebRTC", func(t *testing.T) {
		ctx := controlled(t, browser(t), base, "/sw/landing.html?no-webrtc", "delete window.RTCPeerConnection;")
		got := fetchSHA(t, ctx, "/media/movie.mp4", "{}")
		if got.Status != 200 || got.SHA != shaHex(movie) {
			t.Fatalf("without WebRTC: %+v", got)
		}
		poll[swStats](t, ctx, 10*time.Second, fmt.Sprintf("(s => s.bytesFromHttp === %d && s.bytesFromPeers === 0 && s)(peer5.stats().serviceWorker)", len(movie)))
	})

	// A block that fails its hash in the persistent cache is fetched again.
	t.Run("corrupt block", func(t *testing.T) {
		ctx := controlled(t, browser(t), base, "/sw/landing.html?cache")
		if got := fetchSHA(t, ctx, "/files/big.bin", "{}"); got.SHA != shaHex(big) {
			t.Fatalf("first fetch: %+v", got)
		}
		poll[bool](t, ctx, 15*time.Second, fmt.Sprintf("peer5.stats().seeding.cachedBytes === %d", len(big)))
		eval[bool](t, ctx, 10*time.Second, `navigator.storage.getDirectory().then((r) => r.getDirectoryHandle('p2pxhr')).then(async (d) => { for await (const [, h] of d.entries()) { const w = await (await h.getFileHandle('1')).createWritable(); await w.write(new Uint8Array(262144)); await w.close(); } return true; })`)
		// Another page (the swarm in memory is gone with this one) and a
		// new worker (nothing in its memory): the cache is all there is.
		navigate(t, ctx, base+"/sw/landing.html?after")
		stopWorkers(t, ctx)
		before := eval[swStats](t, ctx, 5*time.Second, "peer5.stats().serviceWorker")
		if got := fetchSHA(t, ctx, "/files/big.bin", "{}"); got.Status != 200 || got.SHA != shaHex(big) {
			t.Fatalf("over a corrupt block: %+v", got)
		}
		s := poll[swStats](t, ctx, 10*time.Second, fmt.Sprintf("(s => s.bytesFromHttp + s.bytesFromCache === %d && s)(peer5.stats().serviceWorker)", len(big)))
		if s.BytesFromHTTP != 262144 || before.Requests != 0 {
			t.Errorf("over a corrupt block: %+v; want the one bad block (262144 bytes) by HTTP, the rest from the cache", s)
		}
	})

	// What the module does not share goes to the network as it is: a
	// small image, a missing file.
	t.Run("not shared", func(t *testing.T) {
		ctx := controlled(t, browser(t), base, "/sw/landing.html?unshared")
		mark := origin.mark()
		eval[bool](t, ctx, 10*time.Second, `new Promise((ok, fail) => { const i = new Image(); i.onload = () => ok(i.naturalWidth === 16); i.onerror = fail; i.src = '/media/small.png'; })`)
		// The browser's request, passed on by the worker (Chromium sends a
		// worker's fetch(request) with Sec-Fetch-Dest: empty), beside the
		// module's own to build a manifest (no Sec-Fetch-Dest).
		if n := origin.browsers(mark, "/media/small.png"); len(n) != 1 {
			t.Errorf("the small image did not come from the origin once: %+v", origin.since(mark))
		}
		if got := fetchSHA(t, ctx, "/media/missing.png", "{}"); got.Status != 404 {
			t.Errorf("a missing file: %+v, want the origin's 404", got)
		}
		if s := eval[swStats](t, ctx, 5*time.Second, "peer5.stats().serviceWorker"); s.Requests != 0 {
			t.Errorf("the worker answered %d requests for unshared files", s.Requests)
		}
	})
}

// untilJS waits (in the page, at most d) until the async predicate pred
// resolves truthy: for conditions only a promise tells, such as the
// browser's registrations.
func untilJS(t *testing.T, ctx tabCtx, d time.Duration, pred string) {
	t.Helper()
	eval[bool](t, ctx, d, `(async () => { for (;;) { if (await (`+pred+`)()) return true; await new Promise((r) => setTimeout(r, 100)); } })()`)
}

// catchWarnings records the page's console warnings in window.__warnings.
const catchWarnings = `window.__warnings = []; { const w = console.warn; console.warn = (...a) => { __warnings.push(a.join(' ')); w.apply(console, a); }; }`

// TestServiceWorkerSiteWorkerAndOff (issue 17): a site with a service
// worker of its own keeps it (the client registers nothing over it and
// says how to import the module's); a site's worker that imports
// {prefix}sw.js answers shared files through the swarm and its own
// requests as before; `service_worker off` makes the next page load
// unregister the module's worker.
func TestServiceWorkerSiteWorkerAndOff(t *testing.T) {
	base, origin := startSWSite(t, "service_worker on")
	big := origin.files["/files/big.bin"]

	t.Run("own worker kept", func(t *testing.T) {
		ctx := visitorTab(t, browser(t), base+"/sw/own.html", catchWarnings)
		poll[bool](t, ctx, 20*time.Second, "__warnings.join().includes('importScripts')")
		untilJS(t, ctx, 10*time.Second, `() => navigator.serviceWorker.ready.then((r) => r.active.scriptURL.endsWith('/own-sw.js'))`)
		if n := eval[int](t, ctx, 5*time.Second, "navigator.serviceWorker.getRegistrations().then((rs) => rs.length)"); n != 1 {
			t.Errorf("%d registrations, want the site's own only", n)
		}
	})

	t.Run("importScripts", func(t *testing.T) {
		ctx := visitorTab(t, browser(t), base+"/sw/own.html?import", catchWarnings)
		eval[bool](t, ctx, 20*time.Second, "navigator.serviceWorker.ready.then((r) => !!r.active)")
		navigate(t, ctx, base+"/sw/landing.html?imported")
		poll[bool](t, ctx, 10*time.Second, "!!navigator.serviceWorker.controller && navigator.serviceWorker.controller.scriptURL.endsWith('/own-sw.js?import')")
		got := fetchSHA(t, ctx, "/files/big.bin", `{headers: {Range: 'bytes=1000000-1999999'}}`)
		if got.Status != 206 || got.SHA != shaHex(big[1000000:2000000]) {
			t.Fatalf("a range through the site's worker: %+v", got)
		}
		if s := eval[string](t, ctx, 10*time.Second, "fetch('/own').then((r) => r.text())"); s != "from the site's worker" {
			t.Errorf("the site's own route: %q", s)
		}
		poll[swStats](t, ctx, 10*time.Second, "(s => s.requests === 1 && s)(peer5.stats().serviceWorker)")
		// Past the client's registration (1.5 s after load) and the 1 s
		// the site's worker has to say it imported the module's: no advice
		// to import what is imported.
		poll[bool](t, ctx, 10*time.Second, "(n => n.loadEventEnd > 0 && performance.now() > n.loadEventEnd + 3000)(performance.getEntriesByType('navigation')[0])")
		if w := eval[[]string](t, ctx, 5*time.Second, "__warnings"); len(w) > 0 {
			t.Errorf("warnings on a site whose worker imports the module's: %q", w)
		}
	})

	t.Run("off unregisters", func(t *testing.T) {
		ctx := controlled(t, browser(t), base, "/sw/landing.html?before-off")
		testcaddy.Reload(t, testcaddy.GlobalOptions()+base+" {\n"+swCaddyfile(origin)+"\n}\n")
		navigate(t, ctx, base+"/sw/landing.html?off")
		untilJS(t, ctx, 20*time.Second, `() => navigator.serviceWorker.getRegistrations().then((rs) => rs.length === 0)`)
		navigate(t, ctx, base+"/sw/landing.html?after-off")
		if eval[bool](t, ctx, 5*time.Second, "!!navigator.serviceWorker.controller") {
			t.Errorf("the page after service_worker off is still controlled")
		}
	})
}
