package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
)

// The plain page the upstream serves: no script tag, one image and links.
const autoPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>plain</title></head>
<body>
<img id="pic" src="/media/pic.png" alt="noise">
<img id="small" src="/media/small.png" alt="too small to share">
<p><a id="dl" href="/media/file.bin" download="renamed.bin">download</a>
<a id="smalldl" href="/media/small.bin" download="small.bin">too small to share</a>
<a id="other" href="/other.bin">not matched</a></p>
</body></html>`

// upstream is the origin behind reverse_proxy: the page, a noise PNG and a
// binary, with validators and Range support (http.ServeContent), and a
// count of the bytes it sent in whole (non-range) responses per path.
type upstream struct {
	URL   string
	files map[string][]byte
	mu    sync.Mutex
	whole map[string]int64
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{files: map[string][]byte{
		"/media/pic.png": noisePNG(t, 512), "/media/file.bin": noise(3 << 20), "/other.bin": noise(300 << 10),
		"/media/small.png": noisePNG(t, 16), "/media/small.bin": noise(10 << 10), // under min_size: not shared
	}, whole: map[string]int64{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/page.html" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(autoPage))
			return
		}
		data, ok := u.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		sum := sha256.Sum256(data)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
		// Revalidated on every use, so a second tab's native request cannot
		// be answered from the browser's memory before the client sees it.
		w.Header().Set("Cache-Control", "public, no-cache")
		cw := &countingWriter{ResponseWriter: w}
		http.ServeContent(cw, r, filepath.Base(r.URL.Path), time.Time{}, bytes.NewReader(data))
		if r.Header.Get("Range") == "" {
			u.mu.Lock()
			u.whole[r.URL.Path] += cw.n
			u.mu.Unlock()
		}
	}))
	t.Cleanup(srv.Close)
	u.URL = srv.URL
	return u
}

func (u *upstream) wholeBytes(path string) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.whole[path]
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func noise(n int) []byte {
	r := rand.NewChaCha8([32]byte{7})
	b := make([]byte, n)
	r.Read(b)
	return b
}

// noisePNG is a side×side PNG of random pixels: incompressible, so it is
// big enough (side 512: about 1 MiB) to be shared.
func noisePNG(t *testing.T, side int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	px := noise(side * side * 3)
	for i := 0; i < side*side; i++ {
		img.SetNRGBA(i%side, i/side, color.NRGBA{px[3*i], px[3*i+1], px[3*i+2], 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func shaHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// urlStats is peer5.stats(url).
type urlStats struct {
	State     string `json:"state"`
	FromHTTP  int64  `json:"bytesFromHttp"`
	FromPeers int64  `json:"bytesFromPeers"`
	Loaded    int64  `json:"loaded"`
}

// TestInjectedBehindReverseProxy (issue 6): a plain HTML page from an
// upstream behind reverse_proxy and a bare p2pxhr gets the client; without
// auto the page's image and links are left alone.
func TestInjectedBehindReverseProxy(t *testing.T) {
	b := browser(t)
	up := startUpstream(t)
	base := testcaddy.Start(t, "p2pxhr\nreverse_proxy "+strings.TrimPrefix(up.URL, "http://"))
	ctx := tab(t, b, base+"/page.html")
	type tagInfo struct {
		Peer5  bool   `json:"peer5"`
		Prefix string `json:"prefix"`
		Auto   string `json:"auto"`
		Img    string `json:"img"`
		State  string `json:"state"`
	}
	got := eval[tagInfo](t, ctx, 5*time.Second, `(() => { const s = document.querySelector('script[src*="client.js"]');
		return { peer5: typeof peer5 === 'object' && typeof peer5.Request === 'function', prefix: s && s.dataset.prefix,
			auto: peer5.config.auto, img: document.getElementById('pic').getAttribute('src'), state: document.getElementById('pic').dataset.p2pxhr || '' }; })()`)
	if !got.Peer5 || got.Prefix != "/_p2pxhr/" || got.Auto != "" || got.Img != "/media/pic.png" || got.State != "" {
		t.Fatalf("injected page: %+v; want peer5, data-prefix /_p2pxhr/, auto off, the image untouched", got)
	}
}

// TestAutoModeTwoTabs (issue 6): with `auto /media/*` and no page code, the
// image and a clicked download link go through the swarm; a second tab gets
// both partly from the first. The download is saved under the link's name.
func TestAutoModeTwoTabs(t *testing.T) {
	b := browser(t)
	up := startUpstream(t)
	base := testcaddy.Start(t, fmt.Sprintf("p2pxhr {\n\tauto /media/*\n\tblock_size 64KiB\n\thttp_rate_limit 1MB/s\n\tdashboard\n}\nreverse_proxy %s", strings.TrimPrefix(up.URL, "http://")))
	pic, file := up.files["/media/pic.png"], up.files["/media/file.bin"]
	downloads := allowDownloads(t, b)
	saved := func(name string, want []byte) {
		t.Helper()
		if shaHex(savedFile(t, downloads, name, len(want))) != shaHex(want) {
			t.Fatalf("the saved %s differs from the origin's", name)
		}
	}

	var second urlStats
	var picHTTP int64 // image bytes the tabs took by range requests
	for i := range 2 {
		ctx := tab(t, b, fmt.Sprintf("%s/page.html?tab=%d", base, i))
		// The image: delivered by the swarm, shown from a blob URL.
		poll[bool](t, ctx, 30*time.Second, `document.getElementById('pic').dataset.p2pxhr === 'p2p' && document.getElementById('pic').complete`)
		img := eval[struct {
			Src   string `json:"src"`
			Width int    `json:"width"`
		}](t, ctx, 5*time.Second, `({ src: document.getElementById('pic').src, width: document.getElementById('pic').naturalWidth })`)
		ps := eval[urlStats](t, ctx, 5*time.Second, `peer5.stats('/media/pic.png')`)
		t.Logf("tab %d image: %d bytes from HTTP, %d from peers", i, ps.FromHTTP, ps.FromPeers)
		if !strings.HasPrefix(img.Src, "blob:") || img.Width != 512 || ps.State != "ok" || ps.FromHTTP+ps.FromPeers != int64(len(pic)) {
			t.Fatalf("tab %d image: src %s, width %d, stats %+v; want a blob URL, 512 px, %d bytes by the swarm", i, img.Src, img.Width, ps, len(pic))
		}
		picHTTP += ps.FromHTTP
		if i == 1 && ps.FromPeers == 0 {
			t.Errorf("second tab: no image bytes from peers")
		}

		// The link: a real click, saved through a blob URL as renamed.bin.
		if err := chromedp.Do(ctx, chromedp.Click("#dl")); err != nil {
			t.Fatalf("clicking the link: %v", err)
		}
		poll[bool](t, ctx, 30*time.Second, `document.getElementById('dl').dataset.p2pxhr === 'p2p'`)
		fs := eval[urlStats](t, ctx, 5*time.Second, `peer5.stats('/media/file.bin')`)
		t.Logf("tab %d link: %d bytes from HTTP, %d from peers", i, fs.FromHTTP, fs.FromPeers)
		if fs.State != "ok" || fs.FromHTTP+fs.FromPeers != int64(len(file)) {
			t.Fatalf("tab %d link: stats %+v; want %d bytes by the swarm", i, fs, len(file))
		}
		saved("renamed.bin", file)
		if i == 1 {
			second = fs
			break
		}

		// Fallbacks, in the first tab: what the module does not share
		// keeps its plain HTTP behaviour, and unmatched links are left alone.
		// The page's small image is usually complete (preloaded) before the
		// client sees it, and then left alone; else it falls back. Either
		// way it keeps its own src. One added later by script goes through
		// the MutationObserver, is refused by the module, and gets it back.
		poll[bool](t, ctx, 10*time.Second, `(e => e.complete && e.naturalWidth === 16 && e.getAttribute('src') === '/media/small.png' && (e.dataset.p2pxhr || 'http') === 'http')(document.getElementById('small'))`)
		eval[bool](t, ctx, 5*time.Second, `(() => { const i = document.createElement('img'); i.id = 'late'; document.body.append(i); i.src = '/media/small.png?late'; return true; })()`)
		poll[bool](t, ctx, 10*time.Second, `(e => e.dataset.p2pxhr === 'http' && e.complete && e.naturalWidth === 16 && e.getAttribute('src') === '/media/small.png?late')(document.getElementById('late'))`)
		if err := chromedp.Do(ctx, chromedp.Click("#smalldl")); err != nil {
			t.Fatalf("clicking the small link: %v", err)
		}
		poll[bool](t, ctx, 10*time.Second, `document.getElementById('smalldl').dataset.p2pxhr === 'http'`)
		saved("small.bin", up.files["/media/small.bin"])
		if err := chromedp.Do(ctx, chromedp.Click("#other")); err != nil {
			t.Fatalf("clicking the unmatched link: %v", err)
		}
		saved("other.bin", up.files["/other.bin"])
		if st := eval[bool](t, ctx, 5*time.Second, `peer5.stats('/other.bin') === null && !document.getElementById('other').dataset.p2pxhr`); !st {
			t.Errorf("the unmatched link went through the client")
		}
	}
	if second.FromPeers == 0 {
		t.Errorf("second tab: no download bytes from peers")
	}
	// What the native image requests (the preload scanner's, cut short when
	// the client takes the src away) still cost: the module's own count of
	// origin bytes, less the tabs' range requests. For client/README.md.
	native := originBytes(t, base, "/media/pic.png") - picHTTP
	t.Logf("native image requests of both tabs: %d bytes (the image is %d)", native, len(pic))
}

// originBytes is the module's count of bytes it let through for path
// (GET {prefix}dashboard/stats, origin.topResources).
func originBytes(t *testing.T, base, path string) int64 {
	t.Helper()
	s := readStats[struct {
		Origin struct {
			Top []struct {
				URL   string `json:"url"`
				Bytes int64  `json:"bytes"`
			} `json:"topResources"`
		} `json:"origin"`
	}](t, base, "")
	for _, r := range s.Origin.Top {
		if r.URL == path {
			return r.Bytes
		}
	}
	return 0
}
