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

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// sizeWindow gives the tab a fixed viewport, so screenshots compare.
func sizeWindow(t *testing.T, ctx context.Context, width, height int64) {
	t.Helper()
	if err := chromedp.Do(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: width, Height: height, DeviceScaleFactor: 1})
		return chromedp.Void{}, err
	}); err != nil {
		t.Fatalf("sizing the window: %v", err)
	}
}

// screenshot takes a full-page screenshot, writes it as name (into
// P2PXHR_SCREENSHOT_DIR when set, to look at after the test) and decodes it.
func screenshot(t *testing.T, ctx context.Context, name string) (image.Image, string) {
	t.Helper()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("P2PXHR_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("decoding the screenshot: %v", err)
	}
	return img, file
}

// box is the page area (in CSS pixels, the screenshot's at scale 1) of the
// first element matching selector.
func box(t *testing.T, ctx context.Context, selector string) image.Rectangle {
	t.Helper()
	r := eval[rect](t, ctx, 5*time.Second, `(() => { const r = document.querySelector(`+js(selector)+`).getBoundingClientRect();
		return { X: r.x + scrollX, Y: r.y + scrollY, W: r.width, H: r.height }; })()`)
	return image.Rect(int(r.X), int(r.Y), int(r.X+r.W), int(r.Y+r.H))
}

// allowDownloads makes the browser save downloads into a new directory,
// which it returns.
func allowDownloads(t *testing.T, b context.Context) string {
	t.Helper()
	dir := t.TempDir()
	if err := chromedp.Do(b, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir})
		return chromedp.Void{}, err
	}); err != nil {
		t.Fatalf("allowing downloads: %v", err)
	}
	return dir
}

// savedFile waits for name to reach size bytes in the download directory,
// returns its bytes and removes it (so the next save gets the same name).
func savedFile(t *testing.T, dir, name string, size int) []byte {
	t.Helper()
	var got []byte
	waitUntil(t, 20*time.Second, name+" in the download folder", func() bool {
		got, _ = os.ReadFile(filepath.Join(dir, name))
		return len(got) == size
	})
	os.Remove(filepath.Join(dir, name))
	return got
}
