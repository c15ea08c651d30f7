package e2e

import (
	"context"
	"image"
	"testing"
	"time"
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
