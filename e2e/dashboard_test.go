package e2e

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
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
	if err := chromedp.Do(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 1280, Height: 900, DeviceScaleFactor: 1})
		return chromedp.Void{}, err
	}); err != nil {
		t.Fatalf("sizing the window: %v", err)
	}
	poll[bool](t, ctx, 15*time.Second, "window.dashboardUpdates >= 2")
	if st := eval[string](t, ctx, 5*time.Second, "document.getElementById('status').className"); st != "status live" {
		t.Fatalf("dashboard status %q, want live", st)
	}
	box := eval[rect](t, ctx, 5*time.Second, `(() => { const r = document.getElementById('chartAB').getBoundingClientRect();
		return { X: r.x + scrollX, Y: r.y + scrollY, W: r.width, H: r.height }; })()`)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// P2PXHR_SCREENSHOT_DIR keeps the picture after the test, to look at.
	dir := os.Getenv("P2PXHR_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	file := filepath.Join(dir, "dashboard.png")
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("decoding the screenshot: %v", err)
	}
	area := image.Rect(int(box.X), int(box.Y), int(box.X+box.W), int(box.Y+box.H)).Intersect(img.Bounds())
	if area.Dx() < 100 || area.Dy() < 100 {
		t.Fatalf("A/B chart at %+v, %v of a %v screenshot: not on the page", box, area, img.Bounds())
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
