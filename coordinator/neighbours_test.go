package coordinator

import (
	"fmt"
	"math/rand"
	"net/netip"
	"testing"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// tableHarness drives swarm state directly, recording every delivery.
type tableHarness struct {
	t    *testing.T
	tab  *swarmTable
	out  []Message
	cfg  Config
	swid string
}

func newHarness(t *testing.T, k int) *tableHarness {
	cfg, err := Config{KnownSwarm: func(string) bool { return true }, MaxNeighbours: k}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	h := &tableHarness{t: t, cfg: cfg, swid: "swarm"}
	h.tab = newSwarmTable(&h.cfg, func(m Message) { h.out = append(h.out, m) })
	return h
}

// join adds peer id on network net holding the given blocks of 8.
func (h *tableHarness) join(id, net string, have ...int) []protocol.Neighbour {
	bf := protocol.NewBitfield(8)
	for _, b := range have {
		bf.Set(b)
	}
	h.out = nil
	h.tab.handle(Message{From: id, Swarm: h.swid, Net: net, Body: &protocol.Join{Swarm: h.swid, Blocks: 8, Bitfield: bf}})
	return h.neighboursOf(id)
}

// neighboursOf returns the neighbours delivered to id since the last call.
func (h *tableHarness) neighboursOf(id string) []protocol.Neighbour {
	var ns []protocol.Neighbour
	for _, m := range h.out {
		if n, ok := m.Body.(*protocol.Neighbours); ok && m.To == id {
			ns = append(ns, n.Peers...)
		}
	}
	return ns
}

func (h *tableHarness) errorsTo(id string) []string {
	var codes []string
	for _, m := range h.out {
		if e, ok := m.Body.(*protocol.Error); ok && m.To == id {
			codes = append(codes, e.Code)
		}
	}
	return codes
}

func (h *tableHarness) send(from string, body protocol.CoordinatorMessage) {
	h.out = nil
	h.tab.handle(Message{From: from, Swarm: h.swid, Body: body})
}

func ids(ns []protocol.Neighbour) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	return out
}

func wantIDs(t *testing.T, got []protocol.Neighbour, want ...string) {
	t.Helper()
	if fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Fatalf("neighbours %v, want %v", ids(got), want)
	}
}

const all = 8

func blocks(from, to int) []int {
	var b []int
	for i := from; i < to; i++ {
		b = append(b, i)
	}
	return b
}

func TestChooseSeedersThenMostComplementary(t *testing.T) {
	h := newHarness(t, 3)
	h.cfg.MaxNeighbours = 6 // let the first peers link freely, then narrow
	h.join("empty", "n1")
	h.join("quarter", "n1", 0, 1)
	h.join("seeder", "n2", blocks(0, all)...)
	h.join("half", "n3", blocks(4, all)...)
	h.cfg.MaxNeighbours = 3
	got := h.join("joiner", "n9", 0)
	wantIDs(t, got, "seeder", "half", "quarter")
	for _, n := range got {
		if !n.Offer {
			t.Fatal("the joiner must be the one to offer")
		}
	}
}

func TestChooseSameNetworkBeforeDegree(t *testing.T) {
	h := newHarness(t, 1)
	h.join("far", "10.0.1.0/24", blocks(0, 4)...)
	h.join("near", "10.0.2.0/24", blocks(4, all)...) // links to far (K=1)
	got := h.join("joiner", "10.0.2.0/24")
	// Both fill half of the gap; near shares the /24.
	wantIDs(t, got, "near")
}

func TestChooseLowDegreeWhenEquallyUseful(t *testing.T) {
	h := newHarness(t, 6)
	h.join("s1", "a", blocks(0, all)...)
	h.join("s2", "b", blocks(0, all)...)
	h.join("s3", "c", blocks(0, all)...)
	// Give s1 extra links so it is the busiest seeder.
	h.tab.swarms["swarm"].members["s1"].links["x"] = struct{}{}
	h.tab.swarms["swarm"].members["s1"].links["y"] = struct{}{}
	h.tab.refresh(h.tab.swarms["swarm"], h.tab.swarms["swarm"].members["s1"])
	h.cfg.MaxNeighbours = 2
	got := h.join("leech", "z")
	wantIDs(t, got, "s2", "s3")
}

func TestChooseNeverSelfNorExistingNorFullDegree(t *testing.T) {
	h := newHarness(t, 2)
	h.cfg.MaxDegree = 3
	h.join("a", "")
	h.join("b", "")                       // b–a
	h.join("c", "")                       // c–a, c–b
	wantIDs(t, h.join("d", ""), "a", "b") // a and b now at MaxDegree
	wantIDs(t, h.join("e", ""), "c", "d") // full a and b are skipped
	// With room for more, e is offered only the peers it lacks: never
	// itself, never c or d again.
	h.cfg.MaxNeighbours, h.cfg.MaxDegree = 10, 10
	s := h.tab.swarms["swarm"]
	for _, m := range s.members {
		h.tab.refresh(s, m)
	}
	var got []string
	for _, m := range h.tab.choose(s, s.members["e"]) {
		got = append(got, m.id)
	}
	if fmt.Sprint(got) != "[a b]" {
		t.Fatalf("e offered %v, want [a b]", got)
	}
}

func TestChurnResuggestsAndOneSideOffers(t *testing.T) {
	h := newHarness(t, 2)
	h.join("a", "")
	h.join("b", "")
	h.join("c", "")
	h.join("d", "")
	h.send("a", &protocol.Leave{Swarm: "swarm"})
	left := 0
	for _, m := range h.out {
		if p, ok := m.Body.(*protocol.PeerLeft); ok && p.Peer == "a" {
			left++
		}
	}
	if left != 3 {
		t.Fatalf("%d peer-left messages, want 3 (a had b, c and d)", left)
	}
	// b keeps c and d; c is left with b only and is topped up with d,
	// c offering.
	if got := h.neighboursOf("b"); len(got) != 0 {
		t.Fatalf("b had K neighbours but got %+v", got)
	}
	if got := h.neighboursOf("c"); len(got) != 1 || got[0].ID != "d" || !got[0].Offer {
		t.Fatalf("c topped up with %+v", got)
	}
	if got := h.neighboursOf("d"); len(got) != 1 || got[0].ID != "c" || got[0].Offer {
		t.Fatalf("d told %+v", got)
	}
}

// TestChurnInvariants runs random joins, leaves, haves and reports and
// checks after every step that links are symmetric, never to oneself,
// bounded by MaxDegree, and that each introduction named exactly one
// offerer.
func TestChurnInvariants(t *testing.T) {
	h := newHarness(t, 3)
	h.cfg.MaxDegree = 5
	rng := rand.New(rand.NewSource(1))
	var live []string
	offers := map[[2]string]int{}
	for step := 0; step < 2000; step++ {
		switch r := rng.Intn(10); {
		case r < 5 || len(live) < 3:
			id := fmt.Sprintf("p%d", step)
			var have []int
			for b := 0; b < all; b++ {
				if rng.Intn(2) == 0 {
					have = append(have, b)
				}
			}
			h.join(id, fmt.Sprintf("n%d", rng.Intn(3)), have...)
			live = append(live, id)
		case r < 8:
			i := rng.Intn(len(live))
			h.send(live[i], &protocol.Leave{Swarm: "swarm"})
			live = append(live[:i], live[i+1:]...)
		default:
			h.send(live[rng.Intn(len(live))], &protocol.Have{Swarm: "swarm", Blocks: []int{rng.Intn(all)}})
		}
		for _, m := range h.out {
			n, ok := m.Body.(*protocol.Neighbours)
			if !ok {
				continue
			}
			for _, p := range n.Peers {
				if p.ID == m.To {
					t.Fatalf("step %d: %s introduced to itself", step, p.ID)
				}
				key := [2]string{min(m.To, p.ID), max(m.To, p.ID)}
				if p.Offer {
					offers[key]++
					if offers[key] > 1 {
						t.Fatalf("step %d: both %s and %s told to offer", step, m.To, p.ID)
					}
				}
			}
		}
		for key := range offers { // forget links that ended, so a later re-introduction counts afresh
			s := h.tab.swarms["swarm"]
			a := s.members[key[0]]
			if a == nil {
				delete(offers, key)
				continue
			}
			if _, ok := a.links[key[1]]; !ok {
				delete(offers, key)
			}
		}
		s := h.tab.swarms["swarm"]
		if s == nil {
			continue
		}
		for id, m := range s.members {
			if (m.open >= 0) != (len(m.links) < h.cfg.MaxDegree) || m.open >= 0 && s.open[m.open] != m {
				t.Fatalf("step %d: %s open index %d with degree %d", step, id, m.open, len(m.links))
			}
			if len(m.links) > h.cfg.MaxDegree {
				t.Fatalf("step %d: %s has degree %d", step, id, len(m.links))
			}
			for nid := range m.links {
				n := s.members[nid]
				if n == nil || nid == id {
					t.Fatalf("step %d: %s linked to %s (gone or itself)", step, id, nid)
				}
				if _, ok := n.links[id]; !ok {
					t.Fatalf("step %d: link %s→%s not symmetric", step, id, nid)
				}
			}
		}
	}
}

func TestRelayOnlyBetweenIntroduced(t *testing.T) {
	h := newHarness(t, 1)
	h.join("a", "")
	h.join("b", "") // b–a
	h.join("c", "") // c–a (lower degree tie → earliest)
	sig := &protocol.Signal{Swarm: "swarm", To: "b", Kind: protocol.SignalOffer, Data: "v=0"}
	h.send("c", sig)
	if codes := h.errorsTo("c"); len(codes) != 1 || codes[0] != protocol.ErrCodeNotIntroduced {
		t.Fatalf("c→b relayed or wrong error: %v", codes)
	}
	h.send("b", &protocol.Signal{Swarm: "swarm", To: "a", Kind: protocol.SignalOffer, Data: "v=0"})
	if len(h.out) != 1 || h.out[0].To != "a" || h.out[0].Body.(*protocol.Signal).From != "b" ||
		h.out[0].Body.(*protocol.Signal).To != "" {
		t.Fatalf("b→a relay: %+v", h.out)
	}
	// Another swarm's member cannot reach in.
	h.swid = "other"
	h.join("z", "")
	h.send("z", &protocol.Signal{Swarm: "swarm", To: "a", Kind: protocol.SignalOffer, Data: "v=0"})
	if codes := h.errorsTo("z"); len(codes) != 1 || codes[0] != protocol.ErrCodeNotJoined {
		t.Fatalf("cross-swarm relay: %v", codes)
	}
}

func TestStatsCumulativeByGroup(t *testing.T) {
	h := newHarness(t, 6)
	h.tab.handle(Message{From: "a", Swarm: "swarm", Group: "p2p", Body: &protocol.Join{Swarm: "swarm", Blocks: 8, Bitfield: protocol.NewBitfield(8)}})
	h.join("b", "")
	h.send("a", &protocol.Stats{Swarm: "swarm", BytesFromHTTP: 100, BytesFromPeers: 50})
	h.send("a", &protocol.Stats{Swarm: "swarm", BytesFromHTTP: 150, BytesFromPeers: 50, BytesUploaded: 7})
	h.send("b", &protocol.Stats{Swarm: "swarm", BytesFromHTTP: 10})
	h.send("b", &protocol.Stats{Swarm: "swarm", BytesFromHTTP: 5})
	if codes := h.errorsTo("b"); len(codes) != 1 || codes[0] != protocol.ErrCodeStatsDecreased {
		t.Fatalf("decrease: %v", codes)
	}
	st := h.tab.snapshot()
	if st.Swarms != 1 || st.Members != 2 || st.BytesFromHTTP != 160 || st.BytesFromPeers != 50 || st.BytesUploaded != 7 {
		t.Fatalf("totals %+v", st)
	}
	if g := st.Groups["p2p"]; g.Members != 1 || g.BytesFromHTTP != 150 {
		t.Fatalf("group p2p %+v", g)
	}
	if g := st.Groups[""]; g.Members != 1 || g.BytesFromHTTP != 10 {
		t.Fatalf("ungrouped %+v", g)
	}
}

func TestSwarmLimitsAndBadInput(t *testing.T) {
	h := newHarness(t, 6)
	h.cfg.MaxPeersPerSwarm = 2
	h.join("a", "")
	h.join("b", "")
	h.join("c", "")
	if codes := h.errorsTo("c"); len(codes) != 1 || codes[0] != protocol.ErrCodeSwarmFull {
		t.Fatalf("third peer: %v", codes)
	}
	h.out = nil
	h.tab.handle(Message{From: "d", Swarm: "swarm", Body: &protocol.Join{Swarm: "swarm", Blocks: 9, Bitfield: protocol.NewBitfield(9)}})
	if codes := h.errorsTo("d"); len(codes) != 1 || codes[0] != protocol.ErrCodeBlockCount {
		t.Fatalf("block count: %v", codes)
	}
	h.send("a", &protocol.Have{Swarm: "swarm", Blocks: []int{8}})
	if codes := h.errorsTo("a"); len(codes) != 1 || codes[0] != protocol.ErrCodeBadBlockIndex {
		t.Fatalf("have past the end: %v", codes)
	}
	h.send("a", &protocol.Leave{Swarm: "swarm"})
	h.send("b", &protocol.Leave{Swarm: "swarm"})
	if st := h.tab.snapshot(); st.Swarms != 0 || st.Members != 0 {
		t.Fatalf("empty swarm kept: %+v", st)
	}
}

func TestLargeSwarmChoiceIsBounded(t *testing.T) {
	// Every join adds K links, so the average degree tends to 2K, the
	// default MaxDegree: a window over all members would soon hold only
	// full ones and late joiners would get nobody (seen in the load test).
	h := newHarness(t, 6)
	for i := 0; i < 8*scanWindow; i++ {
		if got := h.join(fmt.Sprintf("p%d", i), ""); i > 6 && len(got) != 6 {
			t.Fatalf("joiner %d got %d neighbours", i, len(got))
		}
	}
}

func TestNetworkKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.77":           "192.0.2.0/24",
		"::ffff:192.0.2.1":     "192.0.2.0/24",
		"2001:db8:abcd:12::1":  "2001:db8:abcd::/48",
		"2001:db8:abcd:ff::99": "2001:db8:abcd::/48",
	} {
		if got := networkKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("networkKey(%s) = %s, want %s", in, got, want)
		}
	}
	if networkKey(netip.Addr{}) != "" {
		t.Error("invalid address has a network")
	}
}
