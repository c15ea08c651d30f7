package realnet

import (
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/internal/browsertest"
)

// Two Chromium visitors on different networks, in front of a site with the
// bare directive, on a page that loads the client with its own tag: the
// second gets bytes from the first. Without STUN (`stun off`, which is how
// every site behaved before the embedded STUN server) it gets none: the
// browsers' mDNS host candidates do not resolve across networks, so no
// pair of candidates works. That control is the failure the issue
// reported, reproduced.
func TestTwoChromiumsOnDifferentNetworks(t *testing.T) {
	for _, tc := range []struct {
		name, p2pxhr string
		wantPeers    bool
	}{
		{"stun off: no P2P across networks", "p2pxhr {\n\t\tstun off\n\t}", false},
		{"bare directive", "p2pxhr", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, "alice", "bob")
			w.startSite(t, tc.p2pxhr, "40mbit")
			size, sha := w.originSHA(t, "/files/demo.bin")

			alice := w.visitor(t, "alice", browsertest.Chromium).Open(t, w.base+"/test/page.html")
			a := download(t, alice, "/files/demo.bin", size, sha)
			if a.Stats.FromHTTP != size {
				t.Fatalf("alice, alone: %d bytes from HTTP, want all %d", a.Stats.FromHTTP, size)
			}
			bob := w.visitor(t, "bob", browsertest.Chromium).Open(t, w.base+"/test/page.html")
			b := download(t, bob, "/files/demo.bin", size, sha)
			conns := connections(t, bob)
			st := w.stats(t)
			t.Logf("bob: %d bytes from HTTP, %d from %d peers; his attempts: connected %s, failed %d; site: stun %q, connections connected %s failed %d",
				b.Stats.FromHTTP, b.Stats.FromPeers, b.Stats.Peers, joinKeys(conns.Connected), conns.Failed,
				st.ICE.STUN, joinKeys(st.Swarm.Connections.Connected), st.Swarm.Connections.Failed)
			if !tc.wantPeers {
				if b.Stats.FromPeers != 0 {
					t.Fatalf("bob got %d bytes from peers with no STUN server", b.Stats.FromPeers)
				}
				// The operator sees it: bob's attempt is reported failed
				// once its connect timeout (15 s) passes.
				deadline := time.Now().Add(40 * time.Second)
				for w.stats(t).Swarm.Connections.Failed == 0 {
					if time.Now().After(deadline) {
						t.Fatal("the failed attempt never reached the site's stats")
					}
					time.Sleep(250 * time.Millisecond)
				}
				return
			}
			if st.ICE.STUN != "udp :3478" {
				t.Fatalf("site STUN %q (%s)", st.ICE.STUN, st.ICE.STUNError)
			}
			if b.Stats.FromPeers == 0 {
				t.Fatal("bob got nothing from alice across networks")
			}
			// Chromium hides host addresses: the pair that works is the
			// server-reflexive one the site's STUN server revealed (or a
			// peer-reflexive one learnt from its checks).
			if conns.Connected["srflx"]+conns.Connected["prflx"] == 0 {
				t.Errorf("bob's connection took path %v, want srflx or prflx", conns.Connected)
			}
			if n := st.Swarm.Connections.Connected["srflx"] + st.Swarm.Connections.Connected["prflx"]; n == 0 {
				t.Errorf("the site counted no connection: %+v", st.Swarm.Connections)
			}
		})
	}
}
