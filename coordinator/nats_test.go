package coordinator

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
)

func TestNATSUnreachable(t *testing.T) {
	start := time.Now()
	_, err := NewNATSBackplane(NATSOptions{URLs: []string{"nats://127.0.0.1:1"}, ConnectTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "cannot reach NATS at nats://127.0.0.1:1") {
		t.Fatalf("want a clear error, got %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("failing took %v", d)
	}
	if _, err := NewNATSBackplane(NATSOptions{URLs: []string{"nats://x"}, NodeID: "a.b"}); err == nil {
		t.Error("a node id with a dot was accepted")
	}
}

// Both swarm owners are covered: one swarm owned by each node.
func TestNATSAcrossNodes(t *testing.T) {
	ns := startNATS(t, 0)
	na, nb := startNode(t, natsURL(ns), "a"), startNode(t, natsURL(ns), "b")
	waitNodes(t, 2, na, nb)
	for _, owner := range []string{"a", "b"} {
		t.Run("owner-"+owner, func(t *testing.T) {
			swarm := swarmOwnedBy(t, owner, "a", "b")
			a, b := dial(t, na.url), dial(t, nb.url)
			if n := a.joinIn(swarm, 0xf0); len(n.Peers) != 0 {
				t.Fatalf("first joiner got %v", n.Peers)
			}
			nbr := b.joinIn(swarm, 0)
			if len(nbr.Peers) != 1 || nbr.Peers[0].ID != a.id || !nbr.Peers[0].Offer {
				t.Fatalf("b got %+v, want to offer to a", nbr.Peers)
			}
			a.neighbour(b.id, false)
			b.send(&protocol.Signal{Swarm: swarm, To: a.id, Kind: protocol.SignalOffer, Data: "v=0\r\n"})
			if s, ok := a.read().(*protocol.Signal); !ok || s.From != b.id || s.Data != "v=0\r\n" {
				t.Fatalf("relayed offer %#v", s)
			}
			a.send(&protocol.Signal{Swarm: swarm, To: b.id, Kind: protocol.SignalAnswer, Data: "v=0 answer"})
			if s, ok := b.read().(*protocol.Signal); !ok || s.From != a.id || s.Kind != protocol.SignalAnswer {
				t.Fatalf("relayed answer %#v", s)
			}
			// have and stats reach the owner: a's stats count there.
			b.send(&protocol.Have{Swarm: swarm, Blocks: []int{0, 1}})
			b.send(&protocol.Stats{Swarm: swarm, BytesFromHTTP: 100, BytesFromPeers: 200, BytesUploaded: 7})
			b.send(&protocol.Have{Swarm: swarm, Blocks: []int{9}})
			b.wantError(protocol.ErrCodeBadBlockIndex)
			owned := map[string]*testNode{"a": na, "b": nb}[owner]
			waitFor(t, 2*time.Second, "stats at the owner", func() bool {
				return owned.c.Stats().BytesFromPeers >= 200
			})
			// Cluster-wide stats: both nodes, each count once.
			waitFor(t, 2*time.Second, "cluster stats", func() bool {
				s := na.c.Stats()
				return s.Node == "a" && len(s.Nodes) == 2 && s.ClusterPeers == 2 && s.ClusterMembers == 2 &&
					s.ClusterSwarms == 1 && s.Nodes["b"].Peers == 1 && s.Nodes["b"].Members == 1 &&
					s.Nodes[owner].OwnedMembers == 2
			})
			// A report from a to b unlinks them across nodes.
			a.send(&protocol.Report{Swarm: swarm, Peer: b.id, Reason: protocol.ReportBadBlock})
			b.until(2*time.Second, "peer-left after report", func(m protocol.CoordinatorMessage) bool {
				p, ok := m.(*protocol.PeerLeft)
				return ok && p.Peer == a.id
			})
			a.send(&protocol.Signal{Swarm: swarm, To: b.id, Kind: protocol.SignalOffer, Data: "v=0"})
			a.wantError(protocol.ErrCodeNotIntroduced)
		})
	}
	sa, sb := na.c.Stats(), nb.c.Stats()
	if sa.Reports+sb.Reports != 2 || sa.BytesFromHTTP+sb.BytesFromHTTP != 200 {
		t.Errorf("reports %d+%d, bytes %d+%d", sa.Reports, sb.Reports, sa.BytesFromHTTP, sb.BytesFromHTTP)
	}
}

// A node that stops heartbeating (its NATS connection cut, as in a crash)
// has its peers dropped from every swarm within the TTL; the live node
// goes on introducing its own peers, whichever node owned the swarm.
func TestNATSNodeLoss(t *testing.T) {
	ns := startNATS(t, 0)
	na, nb := startNode(t, natsURL(ns), "a"), startNode(t, natsURL(ns), "b")
	waitNodes(t, 2, na, nb)
	swarms := []string{swarmOwnedBy(t, "a", "a", "b"), swarmOwnedBy(t, "b", "a", "b")}
	a1, a2, b1 := dial(t, na.url), dial(t, na.url), dial(t, nb.url)
	for _, s := range swarms {
		a1.joinIn(s, 0xf0)
		if n := b1.joinIn(s, 0); !slices.Equal(ids(n.Peers), []string{a1.id}) {
			t.Fatalf("b1 got %v", ids(n.Peers))
		}
		a1.neighbour(b1.id, false)
		if n := a2.joinIn(s, 0); len(n.Peers) != 2 {
			t.Fatalf("a2 got %v, want a1 and b1", ids(n.Peers))
		}
		b1.neighbour(a2.id, false)
	}
	waitFor(t, 2*time.Second, "6 members in the cluster", func() bool { return na.c.Stats().ClusterMembers == 6 })

	start := time.Now()
	nb.bp.nc.Close() // node b vanishes from NATS without a word
	for _, s := range swarms {
		for _, c := range []*testClient{a1, a2} {
			c.until(3*time.Second, "peer-left of b1", func(m protocol.CoordinatorMessage) bool {
				p, ok := m.(*protocol.PeerLeft)
				return ok && p.Swarm == s && p.Peer == b1.id
			})
		}
	}
	gone := time.Since(start)
	t.Logf("peers of the lost node left their swarms %v after it went silent (TTL %v, heartbeat %v)", gone, testTTL, testHeartbeat)
	if gone > testTTL+3*testHeartbeat+2*testHeartbeat+time.Second {
		t.Errorf("took %v", gone)
	}
	waitFor(t, 2*time.Second, "a alone", func() bool { return len(na.bp.Nodes()) == 1 })
	// The live node carries on: a newcomer is introduced to a1 and a2.
	for _, s := range swarms {
		a3 := dial(t, na.url)
		n := a3.joinIn(s, 0)
		got := ids(n.Peers)
		slices.Sort(got)
		want := []string{a1.id, a2.id}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("newcomer in %s… got %v, want a1 and a2", s[:8], got)
		}
		a3.send(&protocol.Signal{Swarm: s, To: a1.id, Kind: protocol.SignalOffer, Data: "v=0"})
		a1.until(2*time.Second, "offer from a3", func(m protocol.CoordinatorMessage) bool {
			sig, ok := m.(*protocol.Signal)
			return ok && sig.From == a3.id
		})
	}
	if s := na.c.Stats(); s.Members != 6 || s.Swarms != 2 {
		t.Errorf("live node holds %d swarms, %d members; want 2, 6", s.Swarms, s.Members)
	}
}

// A node closed cleanly says bye: its peers leave at once.
func TestNATSNodeClose(t *testing.T) {
	ns := startNATS(t, 0)
	na, nb := startNode(t, natsURL(ns), "a"), startNode(t, natsURL(ns), "b")
	waitNodes(t, 2, na, nb)
	swarm := swarmOwnedBy(t, "b", "a", "b")
	a1, b1 := dial(t, na.url), dial(t, nb.url)
	a1.joinIn(swarm, 0xf0)
	b1.joinIn(swarm, 0)
	a1.neighbour(b1.id, false)
	nb.stop()
	a1.until(2*time.Second, "peer-left of b1", func(m protocol.CoordinatorMessage) bool {
		p, ok := m.(*protocol.PeerLeft)
		return ok && p.Peer == b1.id
	})
	waitFor(t, time.Second, "a alone", func() bool { return len(na.bp.Nodes()) == 1 })
	a2 := dial(t, na.url)
	if n := a2.joinIn(swarm, 0); !slices.Equal(ids(n.Peers), []string{a1.id}) {
		t.Fatalf("a2 got %v", ids(n.Peers))
	}
}

// NATS going away and coming back on the same port: each node serves its
// own peers meanwhile, then the nodes find each other again and new
// introductions cross nodes.
func TestNATSRestart(t *testing.T) {
	ns := startNATS(t, 0)
	port := natsPort(ns)
	na, nb := startNode(t, natsURL(ns), "a"), startNode(t, natsURL(ns), "b")
	waitNodes(t, 2, na, nb)
	swarm := swarmOwnedBy(t, "b", "a", "b")
	a1, b1 := dial(t, na.url), dial(t, nb.url)
	a1.joinIn(swarm, 0xf0)
	b1.joinIn(swarm, 0)
	a1.neighbour(b1.id, false)

	stopNATS(ns)
	waitNodes(t, 1, na, nb)
	// Alone, node a now owns the swarm: b1 is gone from it, and a local
	// newcomer is introduced to a1.
	a1.until(3*time.Second, "peer-left of b1 while NATS is down", func(m protocol.CoordinatorMessage) bool {
		p, ok := m.(*protocol.PeerLeft)
		return ok && p.Peer == b1.id
	})
	a2 := dial(t, na.url)
	if n := a2.joinIn(swarm, 0); !slices.Equal(ids(n.Peers), []string{a1.id}) {
		t.Fatalf("a2 got %v while NATS is down", ids(n.Peers))
	}

	start := time.Now()
	startNATS(t, port)
	waitNodes(t, 2, na, nb)
	t.Logf("nodes found each other %v after NATS restarted", time.Since(start))
	// After the rebuild settles, a newcomer on b is introduced across.
	time.Sleep(3 * testHeartbeat)
	b2 := dial(t, nb.url)
	n := b2.joinIn(swarm, 0)
	if len(n.Peers) == 0 {
		t.Fatal("no introduction after NATS came back")
	}
	peer := n.Peers[0].ID
	b2.send(&protocol.Signal{Swarm: swarm, To: peer, Kind: protocol.SignalOffer, Data: "v=0 again"})
	for _, c := range []*testClient{a1, a2, b1} {
		if c.id == peer {
			c.until(2*time.Second, "offer from b2", func(m protocol.CoordinatorMessage) bool {
				sig, ok := m.(*protocol.Signal)
				return ok && sig.From == b2.id && sig.Data == "v=0 again"
			})
		}
	}
	waitFor(t, 2*time.Second, "every member counted once", func() bool {
		s := na.c.Stats()
		return s.ClusterMembers == 4 && s.ClusterPeers == 4
	})
}
