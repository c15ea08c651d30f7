package coordinator

import (
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// seed joins id as a seeder holding the given blocks of 8.
func (h *tableHarness) seed(id string, have ...int) []protocol.Neighbour {
	bf := protocol.NewBitfield(8)
	for _, b := range have {
		bf.Set(b)
	}
	h.out = nil
	h.tab.handle(Message{From: id, Swarm: h.swid, Body: &protocol.Join{Swarm: h.swid, Blocks: 8, Bitfield: bf, Seed: true}})
	return h.neighboursOf(id)
}

var all8 = []int{0, 1, 2, 3, 4, 5, 6, 7}

// Seeders do not download: two seeders are never linked, nor a seeder and
// a peer lacking nothing it holds; a downloader gets seeders first.
func TestSeedersAreIntroducedOnlyWhereBlocksFlow(t *testing.T) {
	h := newHarness(t, 6)
	wantIDs(t, h.seed("s1", all8...))
	// Another seeder, and a peer that already has everything: not for s2.
	h.join("done", "", all8...)
	wantIDs(t, h.seed("s2", all8...))
	// A partial seeder and a partial member holding only what it holds.
	wantIDs(t, h.seed("half", 0, 1, 2, 3))
	h.join("low", "", 0, 1)
	// A downloader lacking everything gets the peers holding every block
	// first (seeders or not, in join order), then the partial ones.
	wantIDs(t, h.join("d", ""), "s1", "done", "s2", "half", "low")
	// A downloader lacking only blocks 6 and 7 gets no use of "half":
	// it is left out, the whole seeders come first.
	got := h.join("d2", "", 0, 1, 2, 3, 4, 5)
	for _, n := range got {
		if n.ID == "half" {
			t.Fatalf("d2 got the partial seeder that holds none of what it lacks: %v", ids(got))
		}
	}
	if len(got) < 3 {
		t.Fatalf("d2's neighbours %v, want s1, done and s2 at least", ids(got))
	}
}

// A seeder joining is introduced to the members lacking what it holds, to
// no one else, and offers to them.
func TestSeederJoiningServesWhoLacks(t *testing.T) {
	h := newHarness(t, 6)
	h.join("full", "", all8...)
	h.seed("other", all8...)
	h.join("needs", "", 0)
	h.join("needs-half", "", 0, 1, 2, 3)
	got := h.seed("s", all8...)
	// "needs" lacks more: it comes first.
	wantIDs(t, got, "needs", "needs-half")
	for _, n := range got {
		if !n.Offer {
			t.Fatalf("the joining seeder must offer: %+v", got)
		}
	}
	// A seeder whose neighbour left is topped up the same way: never
	// with a member that needs nothing from it.
	h.send("needs", &protocol.Leave{Swarm: h.swid})
	for _, n := range h.neighboursOf("s") {
		if n.ID == "full" || n.ID == "other" {
			t.Fatalf("seeder topped up with %s", n.ID)
		}
	}
}

// Operators see seeders apart: how many are online, the bytes they
// announce, and what they uploaded; leaving takes them out again.
func TestSeedingStats(t *testing.T) {
	h := newHarness(t, 6)
	h.cfg.SwarmSize = func(id string) (int64, bool) { return 8<<20 - 100, id == h.swid }
	h.seed("s1", all8...)
	h.seed("s2", 0, 1, 2, 3)
	h.join("d", "")
	st := h.tab.snapshot()
	want := SeedingStats{Peers: 2, Members: 2, CachedBytes: 8<<20 - 100 + (8<<20-100)/2}
	if st.Seeding != want {
		t.Fatalf("seeding %+v, want %+v", st.Seeding, want)
	}
	h.send("s2", &protocol.Have{Swarm: h.swid, Blocks: []int{4, 5, 6, 7}})
	h.send("s1", &protocol.Stats{Swarm: h.swid, BytesUploaded: 3 << 20})
	h.send("d", &protocol.Stats{Swarm: h.swid, BytesUploaded: 1 << 20, BytesFromPeers: 3 << 20})
	st = h.tab.snapshot()
	want = SeedingStats{Peers: 2, Members: 2, CachedBytes: 2 * (8<<20 - 100), BytesUploaded: 3 << 20}
	if st.Seeding != want || st.BytesUploaded != 4<<20 {
		t.Fatalf("seeding %+v (all uploads %d), want %+v (4 MiB)", st.Seeding, st.BytesUploaded, want)
	}
	h.send("s1", &protocol.Leave{Swarm: h.swid})
	st = h.tab.snapshot()
	want = SeedingStats{Peers: 1, Members: 1, CachedBytes: 8<<20 - 100, BytesUploaded: 3 << 20}
	if st.Seeding != want {
		t.Fatalf("after a seeder left: %+v, want %+v", st.Seeding, want)
	}
}

// The welcome tells the site's upload policy; "always" unless configured.
func TestWelcomeTellsUploadPolicy(t *testing.T) {
	for _, policy := range []string{"", protocol.UploadConsent, protocol.UploadNever} {
		_, url := startServer(t, Config{UploadPolicy: policy}, nil)
		ws, _, err := dialRaw(t, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		tc := &testClient{t: t, ws: ws}
		tc.send(&protocol.Hello{Version: protocol.CoordinatorVersion})
		w, ok := tc.read().(*protocol.Welcome)
		want := policy
		if want == "" {
			want = protocol.UploadAlways
		}
		if !ok || w.Upload != want {
			t.Fatalf("policy %q: welcome %#v, want upload %q", policy, w, want)
		}
	}
	if _, err := New(Config{KnownSwarm: func(string) bool { return true }, UploadPolicy: "sometimes"}); err == nil {
		t.Fatal("an unknown upload policy was accepted")
	}
}

// In a cluster a seeder moves to a swarm's new owner as a seeder (its
// member state says so), and leaves the old owner's counts.
func TestSeederStateMovesBetweenNodes(t *testing.T) {
	h := newHarness(t, 6)
	full := protocol.NewBitfield(8)
	for _, b := range all8 {
		full.Set(b)
	}
	h.tab.resync(h.swid, "n2", &memberState{Peer: "s", Blocks: 8, Bitfield: full, Seed: true}, time.Now())
	h.tab.resync(h.swid, "n2", &memberState{Peer: "p", Blocks: 8, Bitfield: full}, time.Now())
	if st := h.tab.snapshot().Seeding; st.Peers != 1 || st.Members != 1 {
		t.Fatalf("after resync: %+v, want one seeder", st)
	}
	if got := h.join("d", ""); len(got) != 2 {
		t.Fatalf("d got %v, want s and p", ids(got))
	}
	h.tab.release(func(string) bool { return false })
	if st := h.tab.snapshot().Seeding; st != (SeedingStats{}) {
		t.Fatalf("after release: %+v, want nothing", st)
	}
}
