package protocol

import (
	"errors"
	"fmt"
)

// Swarm-wide HTTP coordination (docs/PROTOCOL.md section 3.9): the
// coordinator, which sees every member's blocks, hands out the blocks
// nobody holds as leases, so that each block leaves the origin about once
// per swarm instead of once per member that happens to want it.

// Limits of the assignment messages.
const (
	// MaxFetchWant bounds Fetch.Want and the blocks of one Assign.
	MaxFetchWant = 16
	// MaxFetchBlocks bounds Fetch.Claim and Release.Blocks.
	MaxFetchBlocks = 64
	// MaxLeaseMillis bounds Assign.Lease (10 minutes).
	MaxLeaseMillis = 600_000
)

// Message type names of the assignment messages.
const (
	TypeFetch   = "fetch"
	TypeAssign  = "assign"
	TypeRelease = "release"
)

// Fetch tells the coordinator how many blocks the client wants to fetch
// from the origin at once, and of blocks it fetches from the origin on its
// own. Send it only to a server whose Welcome had Assigns.
type Fetch struct {
	Swarm string `json:"swarm"`
	// Want is how many leases the client wants to hold at once, 0 to
	// MaxFetchWant; 0 asks for no more. The server keeps the client
	// supplied up to Want as blocks free up and leases complete, each time
	// with an Assign.
	Want int `json:"want"`
	// Claim lists blocks the client started fetching from the origin
	// without an assignment (a fallback), at most MaxFetchBlocks, so that
	// they are not assigned to others meanwhile.
	Claim []int `json:"claim,omitempty"`
}

// Assign gives a client blocks to fetch from the origin, each leased to it
// for Lease milliseconds: a Have of the block ends the lease; past it the
// server may give the block to another member. Sent whenever the server
// has blocks for a client that wants some, never more than it wants.
type Assign struct {
	Swarm  string `json:"swarm"`
	Blocks []int  `json:"blocks"`
	Lease  int    `json:"lease"`
}

// Release gives back assignments the client will not complete (its
// download ended, or it got the block from a peer after all).
type Release struct {
	Swarm  string `json:"swarm"`
	Blocks []int  `json:"blocks"`
}

// CoordinatorType implements CoordinatorMessage.
func (*Fetch) CoordinatorType() string { return TypeFetch }

// CoordinatorType implements CoordinatorMessage.
func (*Assign) CoordinatorType() string { return TypeAssign }

// CoordinatorType implements CoordinatorMessage.
func (*Release) CoordinatorType() string { return TypeRelease }

func checkBlocks(typ, field string, blocks []int, most int) error {
	if len(blocks) > most {
		return fmt.Errorf("protocol: %s: more than %d blocks in %s", typ, most, field)
	}
	for _, b := range blocks {
		if b < 0 || b >= MaxBlocks {
			return fmt.Errorf("protocol: %s: block index outside [0, %d)", typ, MaxBlocks)
		}
	}
	return nil
}

// Validate implements CoordinatorMessage.
func (m *Fetch) Validate() error {
	if err := checkID(TypeFetch, "swarm", m.Swarm); err != nil {
		return err
	}
	if m.Want < 0 || m.Want > MaxFetchWant {
		return fmt.Errorf("protocol: fetch: want must be in [0, %d]", MaxFetchWant)
	}
	return checkBlocks(TypeFetch, "claim", m.Claim, MaxFetchBlocks)
}

// Validate implements CoordinatorMessage.
func (m *Assign) Validate() error {
	if err := checkID(TypeAssign, "swarm", m.Swarm); err != nil {
		return err
	}
	if m.Lease < 1 || m.Lease > MaxLeaseMillis {
		return fmt.Errorf("protocol: assign: lease must be in [1, %d] ms", MaxLeaseMillis)
	}
	if len(m.Blocks) == 0 {
		return errors.New("protocol: assign: no blocks")
	}
	return checkBlocks(TypeAssign, "blocks", m.Blocks, MaxFetchWant)
}

// Validate implements CoordinatorMessage.
func (m *Release) Validate() error {
	if err := checkID(TypeRelease, "swarm", m.Swarm); err != nil {
		return err
	}
	if len(m.Blocks) == 0 {
		return errors.New("protocol: release: no blocks")
	}
	return checkBlocks(TypeRelease, "blocks", m.Blocks, MaxFetchBlocks)
}
