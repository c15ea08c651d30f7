package peer

import (
	"slices"
	"testing"
	"time"
)

// The deterministic cases are in protocol/testdata/scheduler_vectors.json
// (TestSchedulerVectors), shared with the JS client's tests; here is what
// vectors cannot state.

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

func TestSchedulerTiesBrokenAtRandom(t *testing.T) {
	// Peers of one swarm spread over different blocks.
	firsts := map[int]bool{}
	for range 40 {
		s := NewBlockScheduler(SchedulerConfig{FirstBlocks: -1, InitialWindow: 1}, make([]bool, 16), time.Unix(0, 0))
		s.AddPeer("p", slices.Repeat([]bool{true}, 16))
		firsts[s.NextForPeer("p", time.Unix(0, 0))[0]] = true
	}
	if len(firsts) <= 3 {
		t.Errorf("40 schedulers picked only %d different first blocks", len(firsts))
	}
}

// TestSchedulerSlowSteadyLinkMissesNoDeadline drives the scheduler against a
// simulated peer that serves our requests one after another at a steady
// pace slower than the window fills: a busy CPU at either end. Every missed
// deadline would send a block the swarm has back to the origin; the queue
// must follow the pace instead, and the link must stay busy.
func TestSchedulerSlowSteadyLinkMissesNoDeadline(t *testing.T) {
	for _, perBlock := range []time.Duration{300 * time.Millisecond, 900 * time.Millisecond, 1900 * time.Millisecond} {
		t.Run(perBlock.String(), func(t *testing.T) {
			const blocks = 96
			now := time.Unix(0, 0)
			s := NewBlockScheduler(SchedulerConfig{FirstBlocks: -1, EndgameBlocks: -1}, make([]bool, blocks), now)
			s.AddPeer("p", slices.Repeat([]bool{true}, blocks))
			var queue []int // requests at the peer, served in order
			var busyUntil time.Time
			missed := 0
			for !s.Done() && now.Before(time.Unix(0, 0).Add(blocks*perBlock*2)) {
				queue = append(queue, s.NextForPeer("p", now)...)
				if len(queue) > 0 && busyUntil.IsZero() {
					busyUntil = now.Add(perBlock)
				}
				if len(queue) > 0 && !now.Before(busyUntil) {
					s.Completed(queue[0], "p", now)
					queue = queue[1:]
					busyUntil = time.Time{}
					if len(queue) > 0 {
						busyUntil = now.Add(perBlock)
					}
					continue
				}
				for _, e := range s.Expire(now) {
					missed++
					queue = slices.DeleteFunc(queue, func(i int) bool { return i == e.Block })
				}
				now = now.Add(10 * time.Millisecond)
			}
			if missed > 0 {
				t.Errorf("%d requests missed their deadline", missed)
			}
			// The link idles only while a request crosses it, never for want of
			// one: within a few percent of back-to-back service.
			if took, ideal := now.Sub(time.Unix(0, 0)), blocks*perBlock; !s.Done() || took > ideal*105/100 {
				t.Errorf("done %v after %v; back to back it takes %v", s.Done(), took, ideal)
			}
		})
	}
}

// TestSchedulerSlowPeerWeakOnlyWithoutCoordination: a peer too slow to keep
// the initial window in flight does not keep HTTP from its blocks while
// HTTP follows its own rules, but does while the coordinator assigns (the
// origin sends each block once; HTTP taking a slow peer's blocks would send
// more). The counts follow the mode both ways.
func TestSchedulerSlowPeerWeakOnlyWithoutCoordination(t *testing.T) {
	t0 := time.Unix(0, 0)
	s := NewBlockScheduler(SchedulerConfig{FirstBlocks: -1, EndgameBlocks: -1}, make([]bool, 8), t0)
	s.AddPeer("slow", slices.Repeat([]bool{true}, 8))
	asked := s.NextForPeer("slow", t0)
	s.Completed(asked[0], "slow", t0.Add(1500*time.Millisecond)) // 1.5 s a block: 2 in flight per 4 s
	sure := func() int {
		n := 0
		for _, c := range s.sure {
			n += c
		}
		return n
	}
	if n := sure(); n != 0 {
		t.Fatalf("uncoordinated: the slow peer is sure for %d blocks, want 0", n)
	}
	s.Coordinate(true)
	if n := sure(); n != 8 {
		t.Fatalf("coordinated: the slow peer is sure for %d blocks, want 8", n)
	}
	s.Coordinate(false)
	if n := sure(); n != 0 {
		t.Fatalf("coordination lost: the slow peer is sure for %d blocks, want 0", n)
	}
}
