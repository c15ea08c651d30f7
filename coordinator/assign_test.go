package coordinator

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// assignHarness drives the swarm table's HTTP coordination with a
// settable clock, over a swarm of n blocks.
type assignHarness struct {
	*tableHarness
	n   int
	now time.Time
}

func newAssignHarness(t *testing.T, n int) *assignHarness {
	h := &assignHarness{tableHarness: newHarness(t, 6), n: n, now: time.Unix(1000, 0)}
	leaseClock = func() time.Time { return h.now }
	t.Cleanup(func() { leaseClock = time.Now })
	return h
}

func (h *assignHarness) joinWith(id string, have ...int) {
	bf := protocol.NewBitfield(h.n)
	for _, b := range have {
		bf.Set(b)
	}
	h.send(id, &protocol.Join{Swarm: h.swid, Blocks: h.n, Bitfield: bf})
}

// fetch sends a Fetch and returns the blocks assigned to each peer by the
// deliveries it caused.
func (h *assignHarness) fetch(id string, want int, claim ...int) map[string][]int {
	h.send(id, &protocol.Fetch{Swarm: h.swid, Want: want, Claim: claim})
	return h.assigned()
}

// vouch has a member of another network vouch for id, as the received
// message does: its blocks count from then on.
func (h *assignHarness) vouch(id string) map[string][]int {
	s := h.tab.swarms[h.swid]
	m := s.members[id]
	addTo(&m.ev.credit, "witness-"+id, "witness-net")
	h.out = nil
	if s.assign != nil {
		s.assign.vouched(m)
		h.tab.pushAssigns(s)
	}
	return h.assigned()
}

func (h *assignHarness) do(id string, m protocol.CoordinatorMessage) map[string][]int {
	h.send(id, m)
	return h.assigned()
}

func (h *assignHarness) have(id string, blocks ...int) map[string][]int {
	return h.do(id, &protocol.Have{Swarm: h.swid, Blocks: blocks})
}

func (h *assignHarness) tick() map[string][]int {
	h.out = nil
	h.tab.tickLeases()
	return h.assigned()
}

// assigned collects the Assigns delivered since the last send.
func (h *assignHarness) assigned() map[string][]int {
	out := map[string][]int{}
	for _, m := range h.out {
		if a, ok := m.Body.(*protocol.Assign); ok {
			if a.Lease <= 0 {
				h.t.Fatalf("assign to %s with lease %d", m.To, a.Lease)
			}
			out[m.To] = append(out[m.To], a.Blocks...)
		}
	}
	return out
}

// Members asking at once get different blocks, never ones someone holds,
// and never more than they want.
func TestAssignSpreadsBlocksNobodyHolds(t *testing.T) {
	h := newAssignHarness(t, 16)
	h.joinWith("seeder-ish", 0, 1, 2, 3)
	h.vouch("seeder-ish")
	h.joinWith("a")
	h.joinWith("b")
	got := map[int]string{}
	for _, id := range []string{"a", "b"} {
		blocks := h.fetch(id, 3)[id]
		if len(blocks) != 3 {
			t.Fatalf("%s got %v, want 3 blocks", id, blocks)
		}
		for _, b := range blocks {
			if b < 4 {
				t.Errorf("%s was given block %d, which seeder-ish holds", id, b)
			}
			if other, dup := got[b]; dup {
				t.Errorf("block %d given to %s and %s", b, other, id)
			}
			got[b] = id
		}
	}
	// Completing a block brings one more, the same moment.
	var done int
	for b, id := range got {
		if id == "a" {
			done = b
		}
	}
	if more := h.have("a", done)["a"]; len(more) != 1 || got[more[0]] != "" || more[0] < 4 {
		t.Fatalf("after a have, a got %v, want one new block nobody has", more)
	}
}

// Over a real WebSocket: the welcome offers assignments, and a Fetch after
// a join is answered with an Assign.
func TestAssignOverWebSocket(t *testing.T) {
	_, url := startServer(t, Config{}, nil)
	ws, _, err := dialRaw(t, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc := &testClient{t: t, ws: ws}
	tc.send(&protocol.Hello{Version: protocol.CoordinatorVersion})
	if w, ok := tc.read().(*protocol.Welcome); !ok || !w.Assigns {
		t.Fatalf("welcome %#v, want assigns", w)
	}
	tc.join(testSwarm)
	tc.send(&protocol.Fetch{Swarm: testSwarm, Want: 2})
	a, ok := tc.read().(*protocol.Assign)
	if !ok || a.Swarm != testSwarm || len(a.Blocks) != 2 || a.Lease != int(firstLease/time.Millisecond) {
		t.Fatalf("got %#v, want two blocks leased for %v", a, firstLease)
	}
}

// Simulated swarm: members fetch what they are assigned and trade the rest;
// while every member stays, each block leaves the origin exactly once.
func TestAssignEachBlockOnceWhileHealthy(t *testing.T) {
	const n, members = 64, 12
	h := newAssignHarness(t, n)
	rng := rand.New(rand.NewSource(1))
	fetched := map[int]int{}
	pending := map[string][]int{}
	held := map[string]map[int]bool{}
	for i := range members {
		id := fmt.Sprintf("m%02d", i)
		h.joinWith(id)
		held[id] = map[int]bool{}
		for to, bs := range h.fetch(id, 2) {
			pending[to] = append(pending[to], bs...)
		}
	}
	for step := 0; step < 5000; step++ {
		id := fmt.Sprintf("m%02d", rng.Intn(members))
		var gained int
		if len(pending[id]) > 0 && rng.Intn(2) == 0 {
			gained = pending[id][0]
			pending[id] = pending[id][1:]
			fetched[gained]++
		} else {
			// From a peer: a block someone else holds that it lacks.
			var options []int
			for other, hs := range held {
				for b := range hs {
					if other != id && !held[id][b] {
						options = append(options, b)
					}
				}
			}
			if len(options) == 0 {
				continue
			}
			slices.Sort(options)
			gained = options[rng.Intn(len(options))]
		}
		if held[id][gained] {
			continue
		}
		held[id][gained] = true
		for to, bs := range h.have(id, gained) {
			pending[to] = append(pending[to], bs...)
		}
	}
	for b := range n {
		if fetched[b] != 1 {
			t.Errorf("block %d left the origin %d times", b, fetched[b])
		}
	}
}

// A member that leaves gives its leases back at once, to a member still
// wanting; a block whose only holder left is assignable again.
func TestAssignLeaverReleasesAtOnce(t *testing.T) {
	h := newAssignHarness(t, 4)
	h.joinWith("holder", 3)
	h.vouch("holder")
	h.joinWith("a")
	h.joinWith("b")
	gotA := h.fetch("a", 3)["a"]
	if !slices.Equal(sorted(gotA), []int{0, 1, 2}) {
		t.Fatalf("a got %v, want 0 1 2", gotA)
	}
	if got := h.fetch("b", 2); len(got["b"]) != 0 {
		t.Fatalf("b got %v while every block is held or leased", got)
	}
	pushed := h.do("a", &protocol.Leave{Swarm: h.swid})
	if len(pushed["b"]) != 2 {
		t.Fatalf("after a left, b was pushed %v, want 2 of a's blocks", pushed)
	}
	pushed = h.do("holder", &protocol.Leave{Swarm: h.swid})
	if len(pushed["b"]) != 0 {
		t.Fatalf("b is full (2 leases) but was pushed %v", pushed)
	}
	h.have("b", pushed["b"]...)
	// Block 3's only holder may come back within rejoinGrace; then the
	// block is the origin's again.
	h.now = h.now.Add(rejoinGrace)
	h.tick()
	if s := h.tab.swarms[h.swid]; s.assign.holders[3] != 0 || s.assign.pos[3] < 0 && s.assign.leases[3] == nil {
		t.Fatal("block 3, whose only holder left, is neither free nor leased")
	}
}

// A member that fetched a block from the origin, left and rejoined on the
// same connection (a Go peer's download ending and its seeding starting)
// still counts for it: the block is not assigned to anyone else. Before,
// the rejoined member was a stranger again and the block left the origin
// twice (peer's TestSwarmFetchesEachBlockOnceFromOrigin failed about one
// run in five under load).
func TestAssignRejoinKeepsStanding(t *testing.T) {
	h := newAssignHarness(t, 2)
	h.joinWith("a")
	h.joinWith("b")
	got := h.fetch("a", 1)["a"]
	if len(got) != 1 {
		t.Fatalf("a got %v, want one block", got)
	}
	mine := got[0]
	h.have("a", mine)
	h.fetch("a", 0)
	h.do("a", &protocol.Leave{Swarm: h.swid})
	h.joinWith("a", mine)
	pushed := h.fetch("b", 2)
	if slices.Contains(pushed["b"], mine) {
		t.Fatalf("b was assigned block %d, which a fetched and still holds after rejoining: %v", mine, pushed)
	}
	h.now = h.now.Add(2 * rejoinGrace)
	if pushed := h.tick(); slices.Contains(pushed["b"], mine) {
		t.Fatalf("after the grace b was assigned block %d, which a still holds: %v", mine, pushed)
	}

	// Leaving for good: the block is the origin's again after the grace.
	h.do("a", &protocol.Leave{Swarm: h.swid})
	if pushed := h.tick(); slices.Contains(pushed["b"], mine) {
		t.Fatalf("block %d assigned at once after its holder left: %v", mine, pushed)
	}
	h.now = h.now.Add(rejoinGrace)
	pushed = h.have("b", 1-mine) // b completes its other block: room for more
	if !slices.Contains(pushed["b"], mine) {
		pushed = h.tick()
	}
	if !slices.Contains(pushed["b"], mine) {
		t.Fatalf("after the grace block %d, whose only holder left, was not assigned: %v", mine, pushed)
	}
}

// A member whose lease runs out loses the block to a member wanting one,
// and gets nothing more until it completes a block.
func TestAssignStalledLeaseMovesOn(t *testing.T) {
	h := newAssignHarness(t, 2)
	h.joinWith("slow")
	h.joinWith("fast")
	slow := h.fetch("slow", 2)["slow"]
	if len(slow) != 2 {
		t.Fatalf("slow got %v", slow)
	}
	h.fetch("fast", 1)
	h.now = h.now.Add(firstLease - time.Millisecond)
	if got := h.tick(); len(got) != 0 {
		t.Fatalf("leases moved before they ran out: %v", got)
	}
	h.now = h.now.Add(time.Millisecond)
	got := h.tick()
	if len(got["fast"]) != 1 || len(got["slow"]) != 0 {
		t.Fatalf("after the leases ran out: %v, want one block for fast and none for slow", got)
	}
	// The other block is free again but slow, stalled, does not get it back.
	if got := h.tick(); len(got) != 0 {
		t.Fatalf("the stalled member was supplied again: %v", got)
	}
	// Its late fetch completes: no longer stalled, it gets the free block.
	other := slow[0]
	if other == got0(got["fast"]) {
		other = slow[1]
	}
	if got := h.have("slow", got0(got["fast"])); len(got["slow"]) != 1 || got["slow"][0] != other {
		t.Fatalf("after slow completed a block: %v, want block %d", got, other)
	}
}

func got0(b []int) int {
	if len(b) == 0 {
		return -1
	}
	return b[0]
}

// Claimed blocks (fetched without an assignment) are not given to others;
// a release frees an assignment; want 0 stops the supply.
func TestAssignClaimsReleaseAndStop(t *testing.T) {
	h := newAssignHarness(t, 3)
	h.joinWith("a")
	h.joinWith("b")
	if got := h.fetch("a", 0, 0); len(got) != 0 {
		t.Fatalf("a claim assigned %v", got)
	}
	got := h.fetch("b", 3)["b"]
	if !slices.Equal(sorted(got), []int{1, 2}) {
		t.Fatalf("b got %v, want 1 2 (0 is a's claim)", got)
	}
	h.fetch("b", 0)
	if pushed := h.do("b", &protocol.Release{Swarm: h.swid, Blocks: []int{1}}); len(pushed) != 0 {
		t.Fatalf("released block pushed to %v, but nobody wants one", pushed)
	}
	// a holds its claim: wanting 2 at once, it gets one more.
	if got := h.fetch("a", 2)["a"]; !slices.Equal(got, []int{1}) {
		t.Fatalf("a got %v, want the released block 1", got)
	}
	h.fetch("a", 2, 7)
	if codes := h.errorsTo("a"); !slices.Equal(codes, []string{protocol.ErrCodeBadBlockIndex}) {
		t.Fatalf("claim past the end: errors %v", codes)
	}
}

func sorted(b []int) []int {
	s := slices.Clone(b)
	slices.Sort(s)
	return s
}

// A member that claims every block but nobody vouches for keeps nothing
// from being assigned; once another network vouches for it (it served a
// verified block), its blocks travel between peers instead.
func TestAssignIgnoresClaimsNobodyVouchesFor(t *testing.T) {
	h := newAssignHarness(t, 4)
	h.joinWith("claims-all", 0, 1, 2, 3)
	h.joinWith("a")
	if got := h.fetch("a", 2)["a"]; len(got) != 2 {
		t.Fatalf("a got %v: the claims of a member nobody vouched for kept the origin from it", got)
	}
	h.joinWith("b")
	h.vouch("claims-all")
	if got := h.fetch("b", 2)["b"]; len(got) != 0 {
		t.Fatalf("b got %v, though a vouched member holds every block", got)
	}
	// What a fetched under its own lease counts as well, vouched or not.
	h.fetch("a", 0)
	first := h.tab.swarms[h.swid].assign
	for b, l := range first.leases {
		if l.owner.mem.id == "a" {
			h.have("a", int(b))
			if first.trusted[b] != 2 {
				t.Fatalf("block %d fetched under a's lease: %d trusted holders, want 2", b, first.trusted[b])
			}
		}
	}
}
