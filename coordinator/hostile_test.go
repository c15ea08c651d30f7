package coordinator

import (
	"testing"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// sync waits until the server has handled everything tc sent so far: a
// leave for a swarm it is not in is answered with an error, in order.
func (tc *testClient) sync() {
	tc.t.Helper()
	tc.send(&protocol.Leave{Swarm: otherSwarm})
	tc.wantError(protocol.ErrCodeNotJoined)
}

// A peer's stats are client-claimed: a membership cannot count more than
// the resource for its downloads (and a bounded multiple for uploads),
// whatever it sends, and the totals never overflow.
func TestStatsFromPeersAreClamped(t *testing.T) {
	const size = 1 << 20
	c, url := startServer(t, Config{
		SwarmBlocks: func(string) (int, bool) { return 4, true },
		SwarmSize:   func(string) (int64, bool) { return size, true },
	}, nil)
	const peers = 3
	for range peers {
		p := dial(t, url)
		p.join(testSwarm)
		p.send(&protocol.Stats{Swarm: testSwarm, BytesFromHTTP: protocol.MaxCounter,
			BytesFromPeers: protocol.MaxCounter, BytesUploaded: protocol.MaxCounter})
		p.sync()
	}
	st := c.Stats()
	if st.BytesFromHTTP < 0 || st.BytesFromHTTP > peers*size || st.BytesFromPeers < 0 || st.BytesFromPeers > peers*size {
		t.Errorf("downloads counted %d from HTTP and %d from peers for %d peers of a %d-byte file",
			st.BytesFromHTTP, st.BytesFromPeers, peers, size)
	}
	if st.BytesUploaded < 0 || st.BytesUploaded > peers*maxUploadCopies*size {
		t.Errorf("uploads counted %d", st.BytesUploaded)
	}
	if g := st.Groups["a"]; g.BytesFromHTTP != st.BytesFromHTTP {
		t.Errorf("group totals %+v differ from the totals %+v", g, st)
	}
}

// Totals saturate instead of wrapping around.
func TestStatsTotalsSaturate(t *testing.T) {
	var b statsBook
	g := b.groupKey("")
	for range 2000 {
		b.add(g, protocol.MaxCounter, protocol.MaxCounter, protocol.MaxCounter)
	}
	if b.total.BytesFromHTTP != protocol.MaxCounter || b.groups[g].BytesUploaded != protocol.MaxCounter {
		t.Errorf("totals %+v, group %+v; want them held at %d", b.total, b.groups[g], int64(protocol.MaxCounter))
	}
}
