package peer

import (
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// HTTPAssigner is a Signaller whose coordinator hands out the blocks to
// fetch from the origin (docs/PROTOCOL.md §3.9), so that each block leaves
// the origin about once per swarm. A Client uses it when its Signaller
// has it; CoordClient does.
type HTTPAssigner interface {
	// Assigning reports whether the coordinator assigns blocks for this
	// swarm now: connected, its welcome said so, and the swarm joined.
	Assigning(swarm string) bool
	// Fetch asks to be kept supplied with want blocks at once, and names
	// blocks fetched from the origin without an assignment.
	Fetch(swarm string, want int, claim []int)
	// Release gives back assigned blocks that will not be fetched.
	Release(swarm string, blocks []int)
	// Assignments delivers the blocks the coordinator assigns.
	Assignments() <-chan Assignment
	// FlushHaves sends the haves waiting for their batch now (paced by the
	// server's rate limit): a finished assignment ends its lease only when
	// the coordinator hears of it, and only then comes the next one.
	FlushHaves()
}

// Assignment is blocks of a swarm to fetch from the origin.
type Assignment struct {
	Swarm  string
	Blocks []int
}

// Wanting assignments: each HTTP worker keeps one block in hand and the
// rest of the want covers assignDelay at the rate blocks come from the
// origin, so a worker never waits for the next assignment.
const assignDelay = 350 * time.Millisecond

// wantFor is how many leases to ask for with workers HTTP workers, when
// one block takes perBlock (0: not measured yet).
func wantFor(workers int, perBlock time.Duration) int {
	if perBlock <= 0 {
		return min(protocol.MaxFetchWant, 2*workers)
	}
	ahead := int((time.Duration(workers)*assignDelay + perBlock - 1) / perBlock)
	return min(protocol.MaxFetchWant, workers+max(1, ahead))
}
