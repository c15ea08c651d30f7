package peer

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestSchedulerRarestFirstAndWindow(t *testing.T) {
	now := time.Unix(0, 0)
	s := NewBlockScheduler(SchedulerConfig{InitialWindow: 2, MaxWindow: 3}, make([]bool, 4), now)
	s.AddPeer("a", []bool{true, true, true, true})
	s.AddPeer("b", []bool{false, true, true, true})
	s.AddPeer("c", []bool{false, false, true, true})
	got := s.NextForPeer("a", now)
	slices.Sort(got)
	// Block 0 is held by a alone, block 1 by a and b: rarest first.
	if !reflect.DeepEqual(got, []int{0, 1}) {
		t.Fatalf("a gets %v, want [0 1]", got)
	}
	if more := s.NextForPeer("a", now); len(more) != 0 {
		t.Fatalf("window exceeded: %v", more)
	}
	if _, http := s.Completed(0, "a"); http {
		t.Fatal("no HTTP fetch to lose")
	}
	if got := s.NextForPeer("a", now); len(got) != 2 { // window grew to 3
		t.Fatalf("after success a gets %v, want 2 more", got)
	}
}

func TestSchedulerHTTPTakesFirstAndOrphanBlocks(t *testing.T) {
	now := time.Unix(0, 0)
	s := NewBlockScheduler(SchedulerConfig{FirstBlocks: 1, EndgameBlocks: -1}, make([]bool, 3), now)
	s.AddPeer("a", []bool{true, true, false})
	if i, ok := s.NextForHTTP(now); !ok || i != 0 {
		t.Fatalf("HTTP first gets %d %v, want block 0", i, ok)
	}
	if i, ok := s.NextForHTTP(now); !ok || i != 2 {
		t.Fatalf("HTTP then gets %d %v, want block 2 that no peer has", i, ok)
	}
	if got := s.NextForPeer("a", now); !reflect.DeepEqual(got, []int{1}) {
		t.Fatalf("peer gets %v, want [1]", got)
	}
	s.SetLoaded(true)
	s.HTTPFailed(2)
	if i, ok := s.NextForHTTP(now); ok {
		t.Fatalf("loaded server: HTTP took %d before the grace period", i)
	}
	if i, ok := s.NextForHTTP(now.Add(time.Second)); ok {
		t.Fatalf("loaded server with a peer connected: HTTP took %d after 1s", i)
	}
	if i, ok := s.NextForHTTP(now.Add(time.Hour)); !ok || i != 2 {
		t.Fatalf("loaded server after grace: %d %v, want 2", i, ok)
	}
}

func TestSchedulerLoneVisitorSkipsTheLoadedGrace(t *testing.T) {
	now := time.Unix(0, 0)
	s := NewBlockScheduler(SchedulerConfig{FirstBlocks: -1, EndgameBlocks: -1}, make([]bool, 2), now)
	s.SetLoaded(true)
	if i, ok := s.NextForHTTP(now.Add(100 * time.Millisecond)); ok {
		t.Fatalf("HTTP took %d before the lonely grace", i)
	}
	if i, ok := s.NextForHTTP(now.Add(600 * time.Millisecond)); !ok || i > 1 {
		t.Fatalf("no peer after 600ms: HTTP got %d %v, want a block", i, ok)
	}
	// Once a neighbour is introduced, its connection is worth the wait.
	s = NewBlockScheduler(SchedulerConfig{FirstBlocks: -1, EndgameBlocks: -1}, make([]bool, 2), now)
	s.SetLoaded(true)
	s.Introduced()
	if i, ok := s.NextForHTTP(now.Add(time.Second)); ok {
		t.Fatalf("HTTP took %d while an introduced peer was connecting", i)
	}
}

func TestSchedulerHTTPStartsAtDifferentBlocks(t *testing.T) {
	// Visitors arriving together fetch different blocks from the origin:
	// each takes a random block no peer has.
	starts := map[int]bool{}
	for range 50 {
		s := NewBlockScheduler(SchedulerConfig{FirstBlocks: -1, EndgameBlocks: -1}, make([]bool, 64), time.Unix(0, 0))
		i, ok := s.NextForHTTP(time.Unix(0, 0))
		if !ok {
			t.Fatal("HTTP idle with no peers on an unloaded server")
		}
		starts[i] = true
	}
	if len(starts) < 10 {
		t.Errorf("50 downloads started HTTP at only %d different blocks", len(starts))
	}
}

func TestSchedulerDeadlineMovesBlock(t *testing.T) {
	now := time.Unix(0, 0)
	s := NewBlockScheduler(SchedulerConfig{FirstBlocks: -1, RequestTimeout: time.Second, InitialWindow: 4}, make([]bool, 2), now)
	s.AddPeer("slow", []bool{true, true})
	s.AddPeer("other", []bool{true, false})
	_ = s.NextForPeer("slow", now)
	exp := s.Expire(now.Add(2 * time.Second))
	if len(exp) != 2 {
		t.Fatalf("expired %v", exp)
	}
	if got := s.NextForPeer("slow", now); len(got) != 0 {
		t.Fatalf("late blocks asked again from the late peer: %v", got)
	}
	if got := s.NextForPeer("other", now); !reflect.DeepEqual(got, []int{0}) {
		t.Fatalf("other peer gets %v, want [0]", got)
	}
	if i, ok := s.NextForHTTP(now); !ok || i != 1 {
		t.Fatalf("HTTP gets %d %v, want late block 1", i, ok)
	}
}

func TestSchedulerEndgameDuplicatesAndCancels(t *testing.T) {
	now := time.Unix(0, 0)
	s := NewBlockScheduler(SchedulerConfig{FirstBlocks: -1}, []bool{true, false}, now)
	s.AddPeer("a", []bool{true, true})
	s.AddPeer("b", []bool{true, true})
	if got := s.NextForPeer("a", now); !reflect.DeepEqual(got, []int{1}) {
		t.Fatalf("a gets %v", got)
	}
	if got := s.NextForPeer("b", now); !reflect.DeepEqual(got, []int{1}) {
		t.Fatalf("endgame: b gets %v, want a duplicate of 1", got)
	}
	if i, ok := s.NextForHTTP(now); !ok || i != 1 {
		t.Fatalf("endgame: HTTP gets %d %v", i, ok)
	}
	losers, httpLost := s.Completed(1, "b")
	if !reflect.DeepEqual(losers, []string{"a"}) || !httpLost || !s.Done() {
		t.Fatalf("losers %v http %v done %v", losers, httpLost, s.Done())
	}
}
