package peer

import (
	"math/rand/v2"
	"slices"
	"time"
)

// Coordinated HTTP (docs/PROTOCOL.md §3.9 and §4.3): when the coordinator
// hands out blocks to fetch from the origin, HTTP takes those, and on its
// own only what nobody can give: a block whose peer request failed with no
// other connected holder (unless the server is loaded: then it waits for
// a peer), or, once no peer has had a request of ours for a while, blocks
// no connected peer has. Blocks taken on its own are
// claimed, so the coordinator gives them to nobody else meanwhile.

// coordMode is whether HTTP follows the coordinator's assignments.
type coordMode int

const (
	coordOff      coordMode = iota // local rules (no coordinator, or one that does not assign)
	coordExpected                  // waiting for the coordinator to start assigning
	coordOn
)

// coordState is the BlockScheduler's part for coordinated HTTP.
type coordState struct {
	mode    coordMode
	queue   []int        // assigned to us, not yet taken by HTTP, in order
	leased  map[int]bool // assigned to us and not held yet
	claims  []int        // taken on our own, not yet told
	claimed map[int]bool
	// busyAt is when some peer last had a request of ours in flight or the
	// coordinator a block leased to us: HTTP takes blocks no connected peer
	// has once both have been idle for StarveGrace (peers have nothing we
	// lack, or cannot serve us, and the swarm fetches the rest). While
	// assignments keep coming, a block taken on our own would most often be
	// one leased to someone else: a second copy from the origin.
	busyAt time.Time
}

// ExpectCoordination makes HTTP wait, up to CoordinationGrace from the
// start, for the coordinator to start assigning (Coordinate(true)), so
// that visitors arriving together do not all fetch the first block.
func (s *BlockScheduler) ExpectCoordination() {
	if s.coord.mode == coordOff {
		s.coord.mode = coordExpected
	}
}

// Coordinate switches HTTP to the coordinator's assignments (on) or back to
// the local rules (off: the coordinator is gone, or does not assign).
func (s *BlockScheduler) Coordinate(on bool) {
	was := s.coord.mode == coordOn
	switch {
	case on:
		s.coord.mode = coordOn
	case was:
		s.coord.mode = coordOff
	}
	if on != was {
		s.recountSure() // weak depends on it
	}
}

// Coordinated reports whether HTTP follows assignments now.
func (s *BlockScheduler) Coordinated() bool { return s.coord.mode == coordOn }

// Assigned records blocks the coordinator leased to this download.
func (s *BlockScheduler) Assigned(blocks []int) {
	if s.coord.leased == nil {
		s.coord.leased = map[int]bool{}
	}
	for _, i := range blocks {
		if i >= 0 && i < len(s.done) && !s.done[i] && !s.coord.leased[i] {
			s.coord.leased[i] = true
			s.coord.queue = append(s.coord.queue, i)
		}
	}
}

// Leased is how many assigned blocks are not held yet, and how many of
// those HTTP has not started.
func (s *BlockScheduler) Leased() (leased, queued int) {
	for _, i := range s.coord.queue {
		if !s.done[i] && !s.http[i] && s.holders[i] == 0 {
			queued++
		}
	}
	return len(s.coord.leased), queued
}

// TakeClaims returns the blocks HTTP took on its own since the last call.
func (s *BlockScheduler) TakeClaims() []int {
	c := s.coord.claims
	s.coord.claims = nil
	return c
}

// coordCompleted books a held block against the leases.
func (s *BlockScheduler) coordCompleted(i int) { delete(s.coord.leased, i) }

// nextCoordinated is NextForHTTP while the coordinator assigns, or while
// it is expected to (then only after the grace).
func (s *BlockScheduler) nextCoordinated(now time.Time) (int, bool, bool) {
	c := &s.coord
	switch c.mode {
	case coordOff:
		return 0, false, false
	case coordExpected:
		if now.Sub(s.start) >= s.cfg.CoordinationGrace {
			c.mode = coordOff
			return 0, false, false
		}
		return 0, false, true
	}
	if c.busyAt.IsZero() || len(c.leased) > 0 {
		c.busyAt = now
	}
	for _, p := range s.peers {
		if len(p.inflight) > 0 {
			c.busyAt = now
			break
		}
	}
	free := func(i int) bool { return !s.done[i] && !s.http[i] && s.holders[i] == 0 }
	take := func(i int, own bool) (int, bool, bool) {
		s.http[i] = true
		if own && !c.leased[i] && !c.claimed[i] {
			if c.claimed == nil {
				c.claimed = map[int]bool{}
			}
			c.claimed[i] = true
			c.claims = append(c.claims, i)
		}
		return i, true, true
	}
	for k := 0; k < len(c.queue); {
		switch i := c.queue[k]; {
		case s.done[i] || !c.leased[i]:
			c.queue = slices.Delete(c.queue, k, k+1)
		case free(i):
			c.queue = slices.Delete(c.queue, k, k+1)
			return take(i, false)
		default:
			k++ // a peer request has it now; ours again if that fails
		}
	}
	// A late block another copy of which the origin would send while it is
	// loaded waits for a peer that has it (or for peers to fall idle). Not
	// loaded, one whose request missed its deadline still waits a quarter of
	// a deadline: the block was rare, most often just fetched by the one
	// peer that had it, and others hold it soon.
	for i := range s.done {
		if free(i) && s.late[i] && !s.loaded && s.availFor(i) == 0 && now.Sub(s.lateAt[i]) >= s.cfg.RequestTimeout/4 {
			return take(i, true)
		}
	}
	grace := s.cfg.StarveGrace
	if s.loaded {
		grace = max(grace, s.cfg.LoadedGrace)
	}
	if now.Sub(c.busyAt) >= grace {
		pick, seen := -1, 0
		for i := range s.done {
			if free(i) && s.sure[i] == 0 {
				if seen++; rand.IntN(seen) == 0 {
					pick = i
				}
			}
		}
		if pick >= 0 {
			return take(pick, true)
		}
	}
	// Endgame, not loaded: a duplicate of a peer request that has been out
	// for half its deadline, not of every last block at once. A peer's queue
	// holds what it delivers in half a deadline (paced), so a request out
	// longer is behind its peer's pace; one out less is only queued.
	if !s.loaded && s.endgame() {
		for i := range s.done {
			if !s.done[i] && !s.http[i] && s.requestedFor(i, now) >= s.cfg.RequestTimeout/2 {
				return take(i, false)
			}
		}
	}
	return 0, false, true
}

// requestedFor is how long the oldest peer request for block i has been
// out (0 when none is).
func (s *BlockScheduler) requestedFor(i int, now time.Time) time.Duration {
	var d time.Duration
	for _, p := range s.peers {
		if dl, ok := p.inflight[i]; ok {
			d = max(d, now.Sub(dl.Add(-s.cfg.RequestTimeout)))
		}
	}
	return d
}
