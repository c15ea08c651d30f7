package realnet

import (
	"testing"

	"github.com/p2pxhr/p2pxhr/internal/browsertest"
)

// A Firefox visitor and a Chromium visitor on different networks share
// files both ways, with the bare directive: each browser serves the
// other the file it fetched first. Both keep their default WebRTC
// privacy (Firefox obfuscates host addresses as mDNS names too).
func TestFirefoxAndChromiumOnDifferentNetworks(t *testing.T) {
	w := newWorld(t, "firefox", "chromium")
	w.startSite(t, "p2pxhr", "40mbit")
	size1, sha1 := w.originSHA(t, "/files/demo.bin")
	size2, sha2 := w.originSHA(t, "/files2/demo.bin")
	ff := w.visitor(t, "firefox", browsertest.Firefox)
	cr := w.visitor(t, "chromium", browsertest.Chromium)
	t.Logf("browsers: %s, %s", ff.Version, cr.Version)
	fp := ff.Open(t, w.base+"/test/page.html")
	cp := cr.Open(t, w.base+"/test/page.html")

	// Firefox first, then Chromium from it.
	if r := download(t, fp, "/files/demo.bin", size1, sha1); r.Stats.FromHTTP != size1 {
		t.Fatalf("firefox alone: %d bytes from HTTP, want all %d", r.Stats.FromHTTP, size1)
	}
	r := download(t, cp, "/files/demo.bin", size1, sha1)
	t.Logf("chromium from firefox: %d bytes from HTTP, %d from peers; chromium's attempts: %+v", r.Stats.FromHTTP, r.Stats.FromPeers, connections(t, cp))
	if r.Stats.FromPeers == 0 {
		t.Error("chromium got nothing from firefox")
	}

	// Chromium first, then Firefox from it.
	if r := download(t, cp, "/files2/demo.bin", size2, sha2); r.Stats.FromPeers != 0 {
		t.Fatalf("chromium, first on files2: %d bytes from peers", r.Stats.FromPeers)
	}
	r = download(t, fp, "/files2/demo.bin", size2, sha2)
	t.Logf("firefox from chromium: %d bytes from HTTP, %d from peers; firefox's attempts: %+v", r.Stats.FromHTTP, r.Stats.FromPeers, connections(t, fp))
	if r.Stats.FromPeers == 0 {
		t.Error("firefox got nothing from chromium")
	}
	st := w.stats(t)
	t.Logf("site: connections %+v", st.Swarm.Connections)
	if st.Swarm.Connections.Failed != 0 {
		t.Errorf("the site counted %d failed attempts", st.Swarm.Connections.Failed)
	}
}
