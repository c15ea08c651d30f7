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
