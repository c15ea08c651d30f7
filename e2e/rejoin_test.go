package e2e

import (
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
)

// A tab seeding a file while the server restarts reconnects, is told
// unknown-swarm (the new server has built no manifest yet), fetches the
// manifest again and rejoins, instead of staying out of the swarm.
func TestTabRejoinsAfterUnknownSwarm(t *testing.T) {
	b := browser(t)
	base := startSite(t, siteOptions{fileSize: "1MiB"})
	ctx := tab(t, b, base+"/test/page.html")
	if r := get(t, ctx, "peer5.Request", "/files/demo.bin", "arraybuffer"); r.Status != 200 || r.Response.Size != 1<<20 {
		t.Fatalf("download: status %d, %d bytes", r.Status, r.Response.Size)
	}
	waitUntil(t, 10*time.Second, "the tab to be in the swarm", func() bool { return coordinatorNow(t, base).Members == 1 })

	testcaddy.Restart(t, base)
	waitUntil(t, 30*time.Second, "the tab to rejoin the swarm", func() bool { return coordinatorNow(t, base).Members == 1 })
}
