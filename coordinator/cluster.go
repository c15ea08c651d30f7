package coordinator

import (
	"cmp"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// This file is the part of the swarm state that only a cluster needs: when
// the set of nodes changes, a swarm's state moves to its new owner, rebuilt
// from what each node knows of its own members (docs/PROTOCOL.md §5).

// memberState is one member as the node holding its connection knows it:
// enough for a new owner to rebuild the member without a new join, keeping
// the links its peer already has.
type memberState struct {
	Peer     string            `json:"peer"`
	Net      string            `json:"net,omitempty"`
	Group    string            `json:"group,omitempty"`
	Blocks   int               `json:"blocks"`
	Bitfield protocol.Bitfield `json:"bitfield"`
	// Links are the peers it was introduced to and has not lost.
	Links []string `json:"links,omitempty"`
	// Avoid are the peers it reported in this swarm.
	Avoid []string `json:"avoid,omitempty"`
	// The last cumulative stats it sent, so the owner's deltas go on.
	HTTP  int64 `json:"http,omitempty"`
	Peers int64 `json:"peers,omitempty"`
	Up    int64 `json:"up,omitempty"`
	// Seed: it joined as a seeder.
	Seed bool `json:"seed,omitempty"`
}

// clusterState is embedded in swarmTable; guarded by swarmTable.mu.
type clusterState struct {
	// quietUntil: until then, not-joined and not-introduced are not sent,
	// because after a change of nodes they mostly mean that a member's
	// state is still on its way to the new owner.
	quietUntil time.Time
	// unsettled swarms were rebuilt from member states; at the deadline,
	// links one side claimed and the other never confirmed are dropped.
	unsettled map[string]time.Time
}

func (t *swarmTable) quiet(code string) bool {
	if t.quietUntil.IsZero() || (code != protocol.ErrCodeNotJoined && code != protocol.ErrCodeNotIntroduced) {
		return false
	}
	return time.Now().Before(t.quietUntil)
}

// hush starts a quiet period, after the set of nodes changed.
func (t *swarmTable) hush(until time.Time) {
	t.mu.Lock()
	t.quietUntil = until
	t.mu.Unlock()
}

// resync adds or updates a member from the state its node sent, linking it
// to each claimed neighbour that claims it back. A claim not confirmed by
// settleAt is dropped with a peer-left.
func (t *swarmTable) resync(swarmID, node string, ms *memberState, settleAt time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.node = node
	blocks := ms.Blocks
	if t.cfg.SwarmBlocks != nil {
		if n, ok := t.cfg.SwarmBlocks(swarmID); ok {
			blocks = n
		}
	}
	s := t.swarms[swarmID]
	if s != nil {
		blocks = s.blocks
	}
	if blocks != ms.Blocks || ms.Bitfield.Check(blocks) != nil {
		t.cfg.Logger.Warn("member state does not fit its swarm", zap.String("swarm", swarmID), zap.String("node", node))
		return
	}
	if s == nil {
		s = newSwarm(swarmID, blocks)
		t.swarms[swarmID] = s
	}
	mem := s.members[ms.Peer]
	if mem == nil {
		if len(s.members) >= t.cfg.MaxPeersPerSwarm {
			t.fail(ms.Peer, swarmID, protocol.ErrCodeSwarmFull, "swarm has the maximum of %d peers", t.cfg.MaxPeersPerSwarm)
			if len(s.members) == 0 {
				delete(t.swarms, swarmID)
			}
			return
		}
		s.seq++
		mem = &member{id: ms.Peer, net: ms.Net, group: t.totals.groupKey(ms.Group), seq: s.seq, open: -1,
			links: make(map[string]struct{}), resynced: true, seed: ms.Seed}
		s.members[mem.id] = mem
		t.totals.member(mem.group, +1)
		t.seedAdded(s, mem)
	}
	mem.node = node
	// The HTTP coordination state counted the old bits: rebuilt on the
	// next Fetch; leases given before the move are forgotten.
	s.assign = nil
	mem.bits = append(protocol.Bitfield(nil), ms.Bitfield...)
	mem.count = mem.bits.Count()
	t.seedHeld(s, mem)
	size := t.swarmSize(s) // clamped as stats are (swarm.go)
	mem.http, mem.peers = max(mem.http, min(ms.HTTP, size)), max(mem.peers, min(ms.Peers, size))
	mem.up = max(mem.up, min(ms.Up, maxUploadCopies*size))
	for _, a := range ms.Avoid {
		if len(mem.avoid) >= maxAvoid {
			break
		}
		if mem.avoid == nil {
			mem.avoid = make(map[string]struct{})
		}
		mem.avoid[a] = struct{}{}
	}
	want := make(map[string]struct{}, len(ms.Links))
	for _, l := range ms.Links {
		want[l] = struct{}{}
	}
	// Links the owner has and the peer no longer does: the other side is
	// told, as if this member had left it.
	for l := range mem.links {
		if _, ok := want[l]; ok {
			continue
		}
		delete(mem.links, l)
		if o := s.members[l]; o != nil {
			delete(o.links, mem.id)
			t.refresh(s, o)
			t.publish(Message{To: o.id, Node: o.node, Swarm: s.id, Body: &protocol.PeerLeft{Swarm: s.id, Peer: mem.id}})
			t.unsettle(s.id, settleAt) // so o is topped up
			t.pend(o, "")
		}
	}
	for l := range want {
		if _, ok := mem.links[l]; ok || l == mem.id {
			continue
		}
		if o := s.members[l]; o != nil {
			if _, claimed := o.pending[mem.id]; claimed {
				delete(o.pending, mem.id)
				o.links[mem.id] = struct{}{}
				mem.links[l] = struct{}{}
				t.refresh(s, o)
				continue
			}
		}
		t.pend(mem, l)
	}
	t.refresh(s, mem)
	t.unsettle(s.id, settleAt)
}

// pend records an unconfirmed link claim of m; "" only marks m as one to
// top up when its swarm settles.
func (t *swarmTable) pend(m *member, peer string) {
	if m.pending == nil {
		m.pending = make(map[string]struct{})
	}
	if peer != "" {
		m.pending[peer] = struct{}{}
	}
}

func (t *swarmTable) unsettle(id string, at time.Time) {
	if t.unsettled == nil {
		t.unsettled = make(map[string]time.Time)
	}
	t.unsettled[id] = at
}

// settle closes the rebuild of every swarm whose deadline has passed: each
// unconfirmed link is dropped with a peer-left to the peer that claimed it
// (the other end is gone or never knew), and members that lost links are
// topped up.
func (t *swarmTable) settle(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, at := range t.unsettled {
		if now.Before(at) {
			continue
		}
		delete(t.unsettled, id)
		s := t.swarms[id]
		if s == nil {
			continue
		}
		var short []*member
		for _, m := range s.members {
			m.resynced = false
			if m.pending == nil {
				continue
			}
			for p := range m.pending {
				t.publish(Message{To: m.id, Node: m.node, Swarm: id, Body: &protocol.PeerLeft{Swarm: id, Peer: p}})
			}
			m.pending = nil
			short = append(short, m)
		}
		slices.SortFunc(short, func(a, b *member) int { return cmp.Compare(a.seq, b.seq) })
		for _, m := range short {
			t.topUp(s, m)
		}
	}
}

// dropNode removes every member whose connection was on node, as if each
// had left: their neighbours are told and topped up.
func (t *swarmTable) dropNode(node string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range t.swarms {
		var gone []*member
		for _, m := range s.members {
			if m.node == node {
				gone = append(gone, m)
			}
		}
		for _, m := range gone {
			t.remove(s, m)
			n++
		}
	}
	return n
}

// release forgets, without telling anyone, every swarm keep refuses: their
// state now lives on another node, rebuilt there by the members' nodes.
func (t *swarmTable) release(keep func(id string) bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for id, s := range t.swarms {
		if keep(id) {
			continue
		}
		for _, m := range s.members {
			t.totals.member(m.group, -1)
			t.seedRemoved(m)
		}
		delete(t.swarms, id)
		delete(t.unsettled, id)
		n++
	}
	return n
}
