package e2e

import (
	"context"
	"image"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Series colours of client/dashboard/dashboard.css.
var (
	peersColour = [3]int{0x3e, 0xcf, 0x8e}
	httpColour  = [3]int{0x5b, 0x8d, 0xef}
)

// rect is a CSS-pixel box on the page.
type rect struct{ X, Y, W, H float64 }

// checkDashboard opens {prefix}dashboard of a site that has reports in
// both A/B groups, waits for two polls, takes a full-page screenshot and
// checks that the A/B chart really holds bars drawn in both series colours
// (the legend swatches, drawn with no data too, are outside that chart).
func checkDashboard(t *testing.T, b context.Context, base string) {
	ctx := tab(t, b, base+"/_p2pxhr/dashboard")
	sizeWindow(t, ctx, 1280, 900)
	poll[bool](t, ctx, 15*time.Second, "window.dashboardUpdates >= 2")
	if st := eval[string](t, ctx, 5*time.Second, "document.getElementById('status').className"); st != "status live" {
		t.Fatalf("dashboard status %q, want live", st)
	}
	area := box(t, ctx, "#chartAB")
	img, file := screenshot(t, ctx, "dashboard.png")
	area = area.Intersect(img.Bounds())
	if area.Dx() < 100 || area.Dy() < 100 {
		t.Fatalf("A/B chart at %v of a %v screenshot: not on the page", area, img.Bounds())
	}
	peers, http := countNear(img, area, peersColour), countNear(img, area, httpColour)
	t.Logf("A/B chart %v: %d pixels near #3ecf8e, %d near #5b8def (screenshot %s)", area, peers, http, file)
	// A median bar is 90/600 of the chart wide and at least one unit tall.
	const least = 60
	if peers < least || http < least {
		t.Fatalf("A/B chart has %d P2P and %d HTTP pixels, want at least %d each: bars not drawn (see %s)", peers, http, least, file)
	}
}

// countNear counts the pixels of area within a small distance of colour.
func countNear(img image.Image, area image.Rectangle, colour [3]int) int {
	n := 0
	for y := area.Min.Y; y < area.Max.Y; y++ {
		for x := area.Min.X; x < area.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			d := abs(int(r>>8)-colour[0]) + abs(int(g>>8)-colour[1]) + abs(int(b>>8)-colour[2])
			if d <= 24 {
				n++
			}
		}
	}
	return n
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// The origin series colour of client/dashboard/dashboard.css.
var originColour = [3]int{0xc6, 0x78, 0xdd}

// historyTotals sums GET {prefix}dashboard/stats?history=0 over its slots.
func historyTotals(t *testing.T, base string) (peers, http, origin int64) {
	t.Helper()
	s := readStats[struct {
		History struct {
			Points []struct {
				FromPeers int64 `json:"fromPeers"`
				FromHTTP  int64 `json:"fromHttp"`
				Origin    int64 `json:"origin"`
			} `json:"points"`
		} `json:"history"`
	}](t, base, "?history=0")
	for _, p := range s.History.Points {
		peers, http, origin = peers+p.FromPeers, http+p.FromHTTP, origin+p.Origin
	}
	return peers, http, origin
}

// byteTick parses a y-axis label of the bytes chart ("512 KiB", "1.5 MiB").
var byteTick = regexp.MustCompile(`^(\d+(?:\.\d)?) (B|KiB|MiB|GiB)$`)

// TestDashboardOpenedLateShowsTheLastHour (issue 19): a dashboard opened
// after the demo's downloads shows them, from the server's history; its
// byte axis counts in whole steps of sensible units; origin bytes and bytes
// from HTTP are both drawn and explained; without `ab` the A/B panel says
// how to turn it on; times are compared per file size class.
func TestDashboardOpenedLateShowsTheLastHour(t *testing.T) {
	b := browser(t)
	base := startDemo(t, demoOptions{fileSize: "8MiB"})
	// Two windows of the image demo (the second from the first), the file
	// downloader once, and a plain download that never used the client.
	first := tab(t, b, base+"/image.html")
	poll[imageStats](t, first, 60*time.Second, imageDone)
	// The history needs peer bytes: on a loaded machine the second window's
	// connection to the first may open only after the origin sent it all
	// (TestImageDemoSecondWindowFromPeers is about that), so a third try.
	for try := 1; ; try++ {
		second := tab(t, b, base+"/image.html")
		if s := poll[imageStats](t, second, 60*time.Second, imageDone); s.FromPeers > 0 || try == 3 {
			break
		}
	}
	dl := tab(t, b, base+"/download.html")
	if err := chromedp.Do(dl, chromedp.Click("#start")); err != nil {
		t.Fatal(err)
	}
	poll[bool](t, dl, 60*time.Second, `document.getElementById('status').textContent.startsWith('done')`)
	fileSHA256(t, base+"/files/demo.bin")
	waitUntil(t, 30*time.Second, "the history to hold bytes from peers and from the origin", func() bool {
		p, h, o := historyTotals(t, base)
		return p > 0 && h > 0 && o > 8<<20
	})

	ctx := tab(t, b, base+"/_p2pxhr/dashboard")
	sizeWindow(t, ctx, 1280, 1000)
	poll[bool](t, ctx, 15*time.Second, "window.dashboardUpdates >= 1")
	ticks := eval[[]string](t, ctx, 5*time.Second, `[...document.querySelectorAll('#chartBytes .ytick')].map((e) => e.textContent)`)
	abText := eval[string](t, ctx, 5*time.Second, `document.getElementById('chartAB').textContent`)
	figText := eval[string](t, ctx, 5*time.Second, `document.getElementById('chartBytes').closest('figure').textContent`)
	classes := eval[[]string](t, ctx, 5*time.Second, `[...document.querySelectorAll('#abTable tbody tr')].map((r) => r.cells[1].textContent)`)
	img, file := screenshot(t, ctx, "dashboard-late.png")
	chart := box(t, ctx, "#chartBytes")

	for _, c := range []struct {
		name   string
		colour [3]int
	}{{"peers", peersColour}, {"HTTP", httpColour}, {"origin", originColour}} {
		if n := countNear(img, chart, c.colour); n < 10 {
			t.Errorf("bytes chart: %d pixels of the %s series, want a drawn line (see %s)", n, c.name, file)
		}
	}
	checkByteTicks(t, ticks)
	if !strings.Contains(figText, "plain downloads that never used the client") {
		t.Errorf("the bytes chart does not explain origin bytes: %q", figText)
	}
	if !strings.Contains(abText, "A/B off") || !strings.Contains(abText, "ab 50") {
		t.Errorf("A/B panel without ab: %q, want it to say A/B is off and how to turn it on", abText)
	}
	if strings.Join(classes, ",") != "under 4 MiB,4 MiB to 64 MiB" {
		t.Errorf("download rows by size class: %q; want the picture and the file apart", classes)
	}
}

// checkByteTicks wants five labels from 0 up in equal steps, each exactly
// its value in a whole number of bytes or of a larger unit (one decimal at
// most): "0 B, 250 KiB, 500 KiB…", not "0.25 B" or "263.7 KiB".
func checkByteTicks(t *testing.T, ticks []string) {
	t.Helper()
	units := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
	var values []float64
	for _, tick := range ticks {
		m := byteTick.FindStringSubmatch(tick)
		if m == nil || (m[2] == "B" && strings.Contains(m[1], ".")) {
			t.Errorf("byte axis tick %q (all %q): not a whole number of bytes or a sensible unit", tick, ticks)
			return
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		values = append(values, v*units[m[2]])
	}
	if len(values) != 5 || values[0] != 0 {
		t.Fatalf("byte axis ticks %q, want five from 0", ticks)
	}
	step := values[1]
	if step != float64(int64(step)) || step < 1 {
		t.Errorf("byte axis ticks %q: a step of %v bytes", ticks, step)
	}
	for i, v := range values {
		if v != float64(i)*step {
			t.Errorf("byte axis ticks %q are not exact equal steps", ticks)
			return
		}
	}
}
