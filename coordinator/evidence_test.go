package coordinator

import (
	"fmt"
	"testing"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// connect relays an offer from a to b and an answer back: what the
// coordinator sees of two peers that really tried to connect.
func (h *tableHarness) connect(a, b string) {
	h.send(a, &protocol.Signal{Swarm: h.swid, To: b, Kind: protocol.SignalOffer, Data: "v=0"})
	h.send(b, &protocol.Signal{Swarm: h.swid, To: a, Kind: protocol.SignalAnswer, Data: "v=0"})
}

func (h *tableHarness) report(from, peer, reason string) {
	h.send(from, &protocol.Report{Swarm: h.swid, Peer: peer, Reason: reason})
}

func (h *tableHarness) vouch(from, peer string) {
	h.send(from, &protocol.Received{Swarm: h.swid, Peer: peer})
	if codes := h.errorsTo(from); len(codes) > 0 {
		h.t.Fatalf("%s vouching for %s: %v", from, peer, codes)
	}
}

func (h *tableHarness) linked(a, b string) bool {
	s := h.tab.swarms[h.swid]
	_, ok := s.members[a].links[b]
	return ok
}

func (h *tableHarness) banned(id string) bool { return h.tab.swarms[h.swid].banned[id] }

// Honest peers on two networks that exchanged signalling with a liar and
// got bad blocks from it get it banned.
func TestReportsFromTwoNetworksBan(t *testing.T) {
	h := newHarness(t, 6)
	h.join("bad", "10.0.0.0/24", blocks(0, all)...)
	h.join("r1", "10.0.1.0/24")
	h.join("r2", "10.0.2.0/24")
	h.connect("r1", "bad")
	h.connect("r2", "bad")
	h.report("r1", "bad", protocol.ReportBadBlock)
	s := h.tab.swarms["swarm"]
	if h.linked("r1", "bad") || h.banned("bad") {
		t.Fatal("one report: r1 must drop bad, bad not yet banned")
	}
	if picks := h.tab.choose(s, s.members["r1"]); len(picks) != 0 {
		t.Fatalf("r1 re-offered %s", picks[0].id)
	}
	if got := h.join("newcomer", "10.0.3.0/24"); len(got) == 0 || got[0].ID != "bad" {
		t.Fatalf("after one report the seeder is still introduced to others: %v", ids(got))
	}
	h.report("r2", "bad", protocol.ReportProtocol)
	if !h.banned("bad") {
		t.Fatal("reports from two networks, each after a real exchange, must ban")
	}
	for _, n := range h.join("late", "10.0.4.0/24") {
		if n.ID == "bad" {
			t.Fatal("banned peer introduced")
		}
	}
	// Reporting a peer one was never introduced to is refused.
	h.report("late", "ghost", protocol.ReportProtocol)
	if codes := h.errorsTo("late"); len(codes) != 1 || codes[0] != protocol.ErrCodeNotIntroduced {
		t.Fatalf("report of a stranger: %v", codes)
	}
	if st := h.tab.snapshot(); st.Reports != 2 || st.Bans != 1 {
		t.Errorf("counted %d reports and %d bans, want 2 and 1", st.Reports, st.Bans)
	}
}

// Fresh connections are free: sybils cannot ban an honest seeder, however
// many, from one network; nor from several when the reports follow no real
// exchange, or when more networks vouch for the seeder. Each false reporter
// loses its standing. Before the fix two fresh ids banned any peer.
func TestSybilsCannotBanAnHonestSeeder(t *testing.T) {
	h := newHarness(t, 6)
	h.cfg.MaxDegree = 64
	h.join("seeder", "10.0.0.0/24", blocks(0, all)...)
	for i := range 10 { // one host, many ids, real exchanges
		id := fmt.Sprintf("sybil%d", i)
		h.join(id, "10.66.0.0/24")
		h.connect(id, "seeder")
		h.report(id, "seeder", protocol.ReportBadBlock)
	}
	if h.banned("seeder") {
		t.Fatal("ten ids from one network banned the seeder")
	}
	for i := range 4 { // several networks, but the seeder never answered them
		id := fmt.Sprintf("far%d", i)
		h.join(id, fmt.Sprintf("10.%d.0.0/24", 70+i))
		h.send(id, &protocol.Signal{Swarm: "swarm", To: "seeder", Kind: protocol.SignalOffer, Data: "v=0"})
		h.report(id, "seeder", protocol.ReportBadBlock)
	}
	if h.banned("seeder") {
		t.Fatal("reports without an exchange banned the seeder")
	}
	// Honest peers on three networks received verified blocks from it.
	for i := range 3 {
		id := fmt.Sprintf("honest%d", i)
		h.join(id, fmt.Sprintf("10.0.%d.0/24", i+1))
		h.connect(id, "seeder")
		h.vouch(id, "seeder")
	}
	for i := range 3 { // now sybils on three networks, real exchanges
		id := fmt.Sprintf("net%d", i)
		h.join(id, fmt.Sprintf("10.%d.0.0/24", 80+i))
		h.connect(id, "seeder")
		h.report(id, "seeder", protocol.ReportBadBlock)
		if m := h.tab.swarms["swarm"].members[id]; !m.ev.discredited {
			t.Fatalf("%s reported a seeder three networks vouch for and kept its standing", id)
		}
	}
	if h.banned("seeder") {
		t.Fatal("sybils on three networks banned a seeder three networks vouch for")
	}
	if st := h.tab.snapshot(); st.Bans != 0 {
		t.Errorf("%d bans", st.Bans)
	}
}

// A reporter that lost its standing, or reports everyone, no longer counts.
func TestFalseReportersLoseStanding(t *testing.T) {
	h := newHarness(t, 6)
	h.cfg.MaxDegree = 64
	h.join("liar", "10.0.0.0/24", blocks(0, all)...)
	h.join("fool", "10.0.1.0/24")
	h.connect("fool", "liar")
	h.report("fool", "liar", protocol.ReportBadBlock) // true, but its standing goes next
	// fool reports four honest peers: a reporter that finds fault with
	// everyone loses its standing, and its earlier report of the liar with it.
	for i := range 4 {
		id := fmt.Sprintf("h%d", i)
		h.join(id, fmt.Sprintf("10.1.%d.0/24", i))
		if !h.linked("fool", id) {
			t.Fatalf("fool not introduced to %s", id)
		}
		h.connect("fool", id)
		h.report("fool", id, protocol.ReportBadBlock)
	}
	if !h.tab.swarms["swarm"].members["fool"].ev.discredited {
		t.Fatal("a member reporting five peers kept its standing")
	}
	h.join("r2", "10.0.2.0/24")
	h.connect("r2", "liar")
	h.report("r2", "liar", protocol.ReportBadBlock)
	if h.banned("liar") {
		t.Fatal("the report of a discredited member still counted")
	}
	h.join("r3", "10.0.3.0/24")
	h.connect("r3", "liar")
	h.report("r3", "liar", protocol.ReportBadBlock)
	if !h.banned("liar") {
		t.Fatal("two reporters in standing must ban")
	}
	for _, id := range []string{"h0", "h1", "h2", "h3"} {
		if h.banned(id) {
			t.Fatalf("%s banned on a discredited word", id)
		}
	}
}

// Idle joiners that never signal take a seeder's link slots; once the
// seeder reports them unreachable the slots are freed, the seeder is
// introduced to a real downloader, and fresh idle ids from the same
// network can no longer take its last K slots. Before the fix 12 idle
// joiners hid a seeder for as long as they stayed.
func TestIdleJoinersCannotEclipseASeeder(t *testing.T) {
	h := newHarness(t, 6) // MaxDegree 12
	h.join("seeder", "10.0.0.0/24", blocks(0, all)...)
	for i := range 12 {
		h.join(fmt.Sprintf("idle%d", i), "10.66.0.0/24")
	}
	s := h.tab.swarms["swarm"]
	if n := len(s.members["seeder"].links); n != 12 {
		t.Fatalf("seeder has %d links, want its 12 taken by idle joiners", n)
	}
	for _, n := range h.join("dl", "10.0.1.0/24") {
		if n.ID == "seeder" {
			t.Fatal("a full seeder was introduced")
		}
	}
	// The downloader reached nobody either: it frees its links too.
	for l := range s.members["dl"].links {
		h.report("dl", l, protocol.ReportUnreachable)
	}
	for i := range 12 {
		h.report("seeder", fmt.Sprintf("idle%d", i), protocol.ReportUnreachable)
	}
	if !h.linked("seeder", "dl") {
		t.Fatalf("after freeing its slots the seeder was not introduced to the downloader: %v", s.members["seeder"].links)
	}
	for i := range 12 {
		if !h.tab.suspect(s, s.members[fmt.Sprintf("idle%d", i)]) {
			t.Fatalf("idle%d is not a suspect", i)
		}
	}
	// The idle host comes back under fresh ids.
	for i := range 24 {
		h.join(fmt.Sprintf("fresh%d", i), "10.66.0.0/24")
	}
	idle := 0
	for l := range s.members["seeder"].links {
		if s.members[l].net == "10.66.0.0/24" {
			idle++
		}
	}
	if idle > h.cfg.MaxDegree-h.cfg.MaxNeighbours {
		t.Fatalf("fresh idle ids took %d of the seeder's %d slots", idle, h.cfg.MaxDegree)
	}
	got := h.join("dl2", "10.0.2.0/24")
	if len(got) == 0 || got[0].ID != "seeder" {
		t.Fatalf("a new downloader's first neighbour %v, want the seeder", ids(got))
	}
}

// Unreachable links between two peers that both signalled blame nobody
// (their networks do not meet); full frees the link at once, blaming
// nobody, and the other side is topped up.
func TestUnreachableAndFullBlameNobody(t *testing.T) {
	h := newHarness(t, 1)
	h.join("a", "10.0.0.0/24", blocks(0, all)...)
	h.join("b", "10.0.1.0/24", blocks(0, all)...)
	h.join("c", "10.0.2.0/24") // c–a (seeder, earliest)
	h.connect("c", "a")
	h.report("c", "a", protocol.ReportUnreachable)
	s := h.tab.swarms["swarm"]
	if h.tab.suspect(s, s.members["a"]) || h.tab.suspect(s, s.members["c"]) {
		t.Fatal("a failed connection both sides tried blamed someone")
	}
	if !h.linked("c", "b") {
		t.Fatal("c was not topped up after the unreachable link")
	}
	h.report("b", "c", protocol.ReportFull)
	if h.tab.suspect(s, s.members["c"]) || h.linked("b", "c") {
		t.Fatal("full must free the link and blame nobody")
	}
}

// An honest peer in a swarm with many liars reports several of them; it
// keeps its standing as long as it reported fewer than half the peers it
// exchanged signalling with, and its reports still ban.
func TestReportingManyLiarsKeepsStanding(t *testing.T) {
	h := newHarness(t, 6)
	h.cfg.MaxDegree = 64
	h.cfg.MaxNeighbours = 16
	for i := range 5 {
		h.join(fmt.Sprintf("liar%d", i), fmt.Sprintf("10.9.%d.0/24", i), blocks(0, all)...)
	}
	for i := range 6 {
		h.join(fmt.Sprintf("ok%d", i), fmt.Sprintf("10.8.%d.0/24", i), blocks(0, all)...)
	}
	for _, v := range []string{"v1", "v2"} {
		h.join(v, "10.0."+v[1:]+".0/24")
		for i := range 6 {
			h.connect(v, fmt.Sprintf("ok%d", i))
		}
		for i := range 5 {
			h.connect(v, fmt.Sprintf("liar%d", i))
			h.report(v, fmt.Sprintf("liar%d", i), protocol.ReportBadBlock)
		}
		if h.tab.swarms["swarm"].members[v].ev.discredited {
			t.Fatalf("%s reported 5 liars among 11 peers and lost its standing", v)
		}
	}
	for i := range 5 {
		if !h.banned(fmt.Sprintf("liar%d", i)) {
			t.Errorf("liar%d not banned by two networks", i)
		}
	}
}
