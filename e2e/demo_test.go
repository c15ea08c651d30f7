package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
)

// startDemo runs the demo site exactly as Caddyfile.example describes it,
// on a free port instead of 8080, with no admin endpoint.
func startDemo(t *testing.T) string {
	t.Helper()
	root := repoDir(t)
	raw, err := os.ReadFile(filepath.Join(root, "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", testcaddy.FreePort(t))
	cfg := strings.ReplaceAll(string(raw), "http://localhost:8080", base)
	cfg = strings.Replace(cfg, "root * client/demo", "root * "+filepath.Join(root, "client", "demo"), 1)
	cfg = strings.Replace(cfg, "{\n\tauto_https off\n}\n", testcaddy.GlobalOptions(), 1)
	if !strings.Contains(cfg, "admin off") || !strings.Contains(cfg, base) || !strings.Contains(cfg, filepath.Join(root, "client", "demo")) {
		t.Fatal("Caddyfile.example no longer has the lines this test rewrites")
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
	base := startDemo(t)
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
