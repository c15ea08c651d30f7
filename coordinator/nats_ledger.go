package coordinator

import (
	"sync"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// ledger is what a node knows of its own peers' memberships: the swarm
// state of each, as its owner should hold it. It is kept from the
// messages passing through the node, so that when a swarm's owner changes
// the new owner can be sent every member's state (and links) instead of
// the peers having to join again.
type ledger struct {
	mu     sync.Mutex
	swarms map[string]map[string]*localMember // swarm → peer
	n      int
}

type localMember struct {
	st    memberState
	links map[string]struct{}
	avoid map[string]struct{}
}

func newLedger() *ledger {
	return &ledger{swarms: make(map[string]map[string]*localMember)}
}

// sent records a swarm-bound message from a local peer.
func (l *ledger) sent(m Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if j, ok := m.Body.(*protocol.Join); ok {
		ms := l.swarms[j.Swarm]
		if ms == nil {
			ms = make(map[string]*localMember)
			l.swarms[j.Swarm] = ms
		}
		if ms[m.From] == nil {
			l.n++
		}
		ms[m.From] = &localMember{st: memberState{Peer: m.From, Net: m.Net, Group: m.Group, Blocks: j.Blocks,
			Bitfield: append(protocol.Bitfield(nil), j.Bitfield...), Seed: j.Seed}, links: make(map[string]struct{})}
		return
	}
	lm := l.swarms[m.Swarm][m.From]
	if lm == nil {
		return
	}
	switch b := m.Body.(type) {
	case *protocol.Have:
		for _, i := range b.Blocks {
			if i < lm.st.Blocks {
				lm.st.Bitfield.Set(i)
			}
		}
	case *protocol.Leave:
		l.drop(m.Swarm, m.From)
	case *protocol.Report:
		delete(lm.links, b.Peer)
		if len(lm.avoid) < maxAvoid {
			if lm.avoid == nil {
				lm.avoid = make(map[string]struct{})
			}
			lm.avoid[b.Peer] = struct{}{}
		}
	case *protocol.Stats:
		lm.st.HTTP = max(lm.st.HTTP, b.BytesFromHTTP)
		lm.st.Peers = max(lm.st.Peers, b.BytesFromPeers)
		lm.st.Up = max(lm.st.Up, b.BytesUploaded)
	}
}

// delivered records a delivery to a local peer: introductions and losses
// change its links; a refused join undoes the membership.
func (l *ledger) delivered(m Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lm := l.swarms[m.Swarm][m.To]
	if lm == nil {
		return
	}
	switch b := m.Body.(type) {
	case *protocol.Neighbours:
		for _, p := range b.Peers {
			lm.links[p.ID] = struct{}{}
		}
	case *protocol.PeerLeft:
		delete(lm.links, b.Peer)
	case *protocol.Error:
		if b.Code == protocol.ErrCodeSwarmFull || b.Code == protocol.ErrCodeBlockCount {
			l.drop(m.Swarm, m.To)
		}
	}
}

func (l *ledger) drop(swarm, peer string) {
	ms := l.swarms[swarm]
	if ms[peer] == nil {
		return
	}
	delete(ms, peer)
	l.n--
	if len(ms) == 0 {
		delete(l.swarms, swarm)
	}
}

// swarmIDs lists the swarms local peers are in.
func (l *ledger) swarmIDs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]string, 0, len(l.swarms))
	for id := range l.swarms {
		ids = append(ids, id)
	}
	return ids
}

// states returns a copy of the state of every local member of swarm.
func (l *ledger) states(swarm string) []*memberState {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*memberState, 0, len(l.swarms[swarm]))
	for _, lm := range l.swarms[swarm] {
		st := lm.st
		st.Bitfield = append(protocol.Bitfield(nil), st.Bitfield...)
		st.Links = keys(lm.links)
		st.Avoid = keys(lm.avoid)
		out = append(out, &st)
	}
	return out
}

// memberships counts local peers' swarm memberships.
func (l *ledger) memberships() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func keys(m map[string]struct{}) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
