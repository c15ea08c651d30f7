package coordinator

import (
	"cmp"
	"fmt"
	"slices"
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// maxAvoid bounds the peers one member may have reported in one swarm; past
// it reports still unlink but are not remembered, so memory stays bounded.
const maxAvoid = 1024

// swarmTable is the swarm state: membership, introductions (links), block
// maps and reports. It receives swarm-bound Messages from the Backplane and
// publishes deliveries back to it. One mutex guards it all: every operation
// is short (neighbour choice scans a bounded window), and it keeps the order
// of deliveries to a peer the order of the operations that caused them.
type swarmTable struct {
	cfg     *Config
	publish func(Message)

	mu     sync.Mutex
	swarms map[string]*swarm
	totals statsBook
	// node is the node of the peer whose message is being handled, so an
	// error goes back to where it came from; "" in a single process.
	node string
	// cluster state; zero in a single process (cluster.go).
	clusterState
}

type swarm struct {
	id     string
	blocks int
	seq    uint64
	// members by peer id; open holds those below MaxDegree, the only ones
	// that can be suggested, so that neighbour choice scans a window of
	// candidates that have room instead of walking full peers.
	members map[string]*member
	open    []*member
	cursor  int
	// banned peers are introduced to no one (evidence.go decides).
	banned map[string]bool
	// suspectNets counts, per network, the members that became suspects.
	suspectNets map[string]int
	// assign is the HTTP coordination state, from the first Fetch on
	// (assign.go).
	assign *assignments
}

func newSwarm(id string, blocks int) *swarm {
	return &swarm{id: id, blocks: blocks, members: make(map[string]*member), banned: make(map[string]bool)}
}

type member struct {
	id    string
	node  string // the node holding its connection; "" in a single process
	net   string
	group string
	seq   uint64
	open  int // index in swarm.open, or -1
	bits  protocol.Bitfield
	count int
	// links are the peers this member was introduced to and still has.
	links map[string]struct{}
	// avoid holds peers this member reported: never introduced again.
	avoid map[string]struct{}
	// last cumulative stats, to turn reports into deltas.
	http, peers, up int64
	// resynced: rebuilt from its node's state, its join may still come.
	resynced bool
	// pending holds links it claims that the other side has not confirmed
	// yet, while its swarm is rebuilt after a change of nodes (cluster.go).
	pending map[string]struct{}
	// seed: joined as a seeder (seeders.go); held is the bytes it is
	// counted as holding in the seeding totals.
	seed bool
	held int64
	// ev is its conduct as far as the coordinator can tell (evidence.go).
	ev evidence
}

func newSwarmTable(cfg *Config, publish func(Message)) *swarmTable {
	return &swarmTable{cfg: cfg, publish: publish, swarms: make(map[string]*swarm)}
}

// handle applies one swarm-bound message.
func (t *swarmTable) handle(m Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.node = m.Node
	switch b := m.Body.(type) {
	case *protocol.Join:
		t.join(m, b)
	case *protocol.Leave:
		t.leave(m.From, b.Swarm)
	case *protocol.Have:
		t.have(m.From, b)
	case *protocol.Signal:
		t.relay(m.From, b)
	case *protocol.Report:
		t.report(m.From, b)
	case *protocol.Received:
		t.received(m.From, b)
	case *protocol.Stats:
		t.stats(m.From, b)
	case *protocol.Fetch:
		t.fetch(m.From, b)
	case *protocol.Release:
		t.releaseLeases(m.From, b)
	}
}

// fail tells the peer whose message is being handled what was wrong,
// unless the swarm state is being rebuilt after a change of nodes, when
// not-joined and not-introduced only mean its state has not arrived yet.
func (t *swarmTable) fail(to, swarm, code, format string, args ...any) {
	if t.quiet(code) {
		return
	}
	t.publish(Message{To: to, Node: t.node, Swarm: swarm, Body: &protocol.Error{
		Code: code, Message: fmt.Sprintf(format, args...), Swarm: swarm}})
}

func (t *swarmTable) join(m Message, j *protocol.Join) {
	blocks := j.Blocks
	if t.cfg.SwarmBlocks != nil {
		if n, ok := t.cfg.SwarmBlocks(j.Swarm); ok {
			blocks = n
		}
	}
	s := t.swarms[j.Swarm]
	if s != nil {
		blocks = s.blocks
	}
	if j.Blocks != blocks {
		t.fail(m.From, j.Swarm, protocol.ErrCodeBlockCount, "this swarm has %d blocks, not %d", blocks, j.Blocks)
		return
	}
	if s == nil {
		s = newSwarm(j.Swarm, blocks)
		t.swarms[j.Swarm] = s
	}
	if old := s.members[m.From]; old != nil {
		if old.resynced {
			// Its state arrived from its node before the join itself (the
			// owner changed in between): this is the answer to that join.
			old.resynced = false
			t.introduce(s, old, t.choose(s, old), true)
			return
		}
		t.fail(m.From, s.id, protocol.ErrCodeAlreadyJoined, "already in this swarm")
		return
	}
	if len(s.members) >= t.cfg.MaxPeersPerSwarm {
		t.fail(m.From, s.id, protocol.ErrCodeSwarmFull, "swarm has the maximum of %d peers", t.cfg.MaxPeersPerSwarm)
		return
	}
	s.seq++
	mem := &member{id: m.From, node: m.Node, net: m.Net, group: t.totals.groupKey(m.Group), seq: s.seq, open: -1,
		bits: append(protocol.Bitfield(nil), j.Bitfield...), count: j.Bitfield.Count(),
		links: make(map[string]struct{}), seed: j.Seed}
	s.members[mem.id] = mem
	t.joined(s, mem)
	t.refresh(s, mem)
	t.totals.member(mem.group, +1)
	t.seedAdded(s, mem)
	if s.assign != nil {
		s.assign.joined(mem)
	}
	// The joiner always gets a Neighbours, empty or not: it is the answer
	// to its join.
	t.introduce(s, mem, t.choose(s, mem), true)
}

// introduce links a to each of picks. a is told to offer, the others to
// answer, so two peers never offer to each other at once.
func (t *swarmTable) introduce(s *swarm, a *member, picks []*member, always bool) {
	if len(picks) == 0 && !always {
		return
	}
	peers := make([]protocol.Neighbour, 0, len(picks))
	for _, p := range picks {
		a.links[p.id] = struct{}{}
		p.links[a.id] = struct{}{}
		forgetLink(a, p) // a new link: nothing tried on it yet
		peers = append(peers, protocol.Neighbour{ID: p.id, Offer: true})
		t.refresh(s, p)
	}
	t.refresh(s, a)
	t.publish(Message{To: a.id, Node: a.node, Swarm: s.id, Body: &protocol.Neighbours{Swarm: s.id, Peers: peers}})
	for _, p := range picks {
		t.publish(Message{To: p.id, Node: p.node, Swarm: s.id, Body: &protocol.Neighbours{Swarm: s.id,
			Peers: []protocol.Neighbour{{ID: a.id, Offer: false}}}})
	}
}

// topUp suggests new neighbours to a member that has fewer than K.
func (t *swarmTable) topUp(s *swarm, mem *member) {
	t.introduce(s, mem, t.choose(s, mem), false)
}

func (t *swarmTable) leave(from, id string) {
	s := t.swarms[id]
	var mem *member
	if s != nil {
		mem = s.members[from]
	}
	if mem == nil {
		t.fail(from, id, protocol.ErrCodeNotJoined, "not in this swarm")
		return
	}
	t.remove(s, mem)
}

// remove takes mem out of s, tells its neighbours and tops them up.
func (t *swarmTable) remove(s *swarm, mem *member) {
	from, id := mem.id, s.id
	delete(s.members, from)
	t.refresh(s, mem) // no longer a member: out of open
	delete(s.banned, from)
	t.totals.member(mem.group, -1)
	t.seedRemoved(mem)
	if len(s.members) == 0 {
		delete(t.swarms, id)
		return
	}
	if s.assign != nil {
		s.assign.left(mem)
		defer t.pushAssigns(s)
	}
	var orphans []*member
	for nid := range mem.links {
		n := s.members[nid]
		if n == nil {
			continue
		}
		delete(n.links, from)
		delete(n.ev.tried, from)
		t.refresh(s, n)
		t.publish(Message{To: nid, Node: n.node, Swarm: id, Body: &protocol.PeerLeft{Swarm: id, Peer: from}})
		orphans = append(orphans, n)
	}
	// Keep suggesting: every neighbour that lost a link is topped up, in
	// join order so that who offers to whom does not depend on map order.
	slices.SortFunc(orphans, func(a, b *member) int { return cmp.Compare(a.seq, b.seq) })
	for _, n := range orphans {
		t.topUp(s, n)
	}
}

// refresh keeps s.open in step with a member's degree and presence.
func (t *swarmTable) refresh(s *swarm, m *member) {
	want := s.members[m.id] == m && len(m.links) < t.cfg.MaxDegree
	switch {
	case want && m.open < 0:
		m.open = len(s.open)
		s.open = append(s.open, m)
	case !want && m.open >= 0:
		last := s.open[len(s.open)-1]
		s.open[m.open] = last
		last.open = m.open
		s.open[len(s.open)-1] = nil
		s.open = s.open[:len(s.open)-1]
		m.open = -1
	}
}

func (t *swarmTable) memberOf(from, id string) (*swarm, *member) {
	s := t.swarms[id]
	if s == nil || s.members[from] == nil {
		t.fail(from, id, protocol.ErrCodeNotJoined, "not in this swarm")
		return nil, nil
	}
	return s, s.members[from]
}

func (t *swarmTable) have(from string, h *protocol.Have) {
	s, mem := t.memberOf(from, h.Swarm)
	if mem == nil {
		return
	}
	defer t.seedHeld(s, mem)
	for _, b := range h.Blocks {
		if b >= s.blocks {
			t.fail(from, s.id, protocol.ErrCodeBadBlockIndex, "block %d past the last block (%d)", b, s.blocks-1)
			return
		}
		if !mem.bits.Has(b) {
			mem.bits.Set(b)
			mem.count++
			if s.assign != nil {
				s.assign.have(mem, int32(b))
			}
		}
	}
	t.pushAssigns(s)
}

// relay forwards a signal only between two members of the same swarm that
// the coordinator introduced to each other.
func (t *swarmTable) relay(from string, sig *protocol.Signal) {
	s, mem := t.memberOf(from, sig.Swarm)
	if mem == nil {
		return
	}
	if _, ok := mem.links[sig.To]; !ok {
		t.fail(from, sig.Swarm, protocol.ErrCodeNotIntroduced, "peer %.8s… was not introduced to you in this swarm", sig.To)
		return
	}
	t.totals.signals++
	t.signalled(s, mem, sig.To)
	out := *sig
	out.To, out.From = "", from
	var node string
	if to := s.members[sig.To]; to != nil {
		node = to.node
	}
	t.publish(Message{To: sig.To, Node: node, Swarm: sig.Swarm, From: from, Body: &out})
}

// report unlinks a member from a neighbour it reports, for good, and
// weighs the report (evidence.go).
func (t *swarmTable) report(from string, r *protocol.Report) {
	s, mem := t.memberOf(from, r.Swarm)
	if mem == nil {
		return
	}
	if _, ok := mem.links[r.Peer]; !ok {
		t.fail(from, s.id, protocol.ErrCodeNotIntroduced, "peer %.8s… is not your neighbour in this swarm", r.Peer)
		return
	}
	t.totals.reports++
	if ce := t.cfg.Logger.Check(zapcore.DebugLevel, "peer reported"); ce != nil {
		ce.Write(zap.String("swarm", s.id), zap.String("from", from), zap.String("peer", r.Peer), zap.String("reason", r.Reason))
	}
	if len(mem.avoid) < maxAvoid {
		if mem.avoid == nil {
			mem.avoid = make(map[string]struct{})
		}
		mem.avoid[r.Peer] = struct{}{}
	}
	delete(mem.links, r.Peer)
	t.refresh(s, mem)
	bad := s.members[r.Peer]
	_, tried := mem.ev.tried[r.Peer]
	if bad != nil {
		_, answered := bad.ev.tried[from]
		tried = tried && answered
		delete(bad.links, from)
		t.refresh(s, bad)
		t.publish(Message{To: r.Peer, Node: bad.node, Swarm: s.id, Body: &protocol.PeerLeft{Swarm: s.id, Peer: from}})
	}
	t.weigh(s, mem, bad, r.Reason, tried)
	if bad != nil {
		forgetLink(mem, bad)
		if r.Reason == protocol.ReportFull || r.Reason == protocol.ReportUnreachable {
			// A link freed for want of room or of a connection: the other
			// side looks elsewhere at once, not at its next loss.
			t.topUp(s, bad)
		}
	} else {
		delete(mem.ev.tried, r.Peer)
	}
	if r.Reason != protocol.ReportFull {
		t.topUp(s, mem) // a full reporter wants no more neighbours
	}
}

func (t *swarmTable) stats(from string, st *protocol.Stats) {
	s, mem := t.memberOf(from, st.Swarm)
	if mem == nil {
		return
	}
	// Client-claimed: a membership downloads at most the resource and
	// uploads at most maxUploadCopies of it, whatever it says.
	size := t.swarmSize(s)
	http, peers := min(st.BytesFromHTTP, size), min(st.BytesFromPeers, size)
	up := min(st.BytesUploaded, maxUploadCopies*size)
	if http < mem.http || peers < mem.peers || up < mem.up {
		t.fail(from, st.Swarm, protocol.ErrCodeStatsDecreased, "stats are cumulative since join and never decrease")
		return
	}
	t.totals.add(mem.group, http-mem.http, peers-mem.peers, up-mem.up)
	t.seedUploaded(mem, up-mem.up)
	mem.http, mem.peers, mem.up = http, peers, up
}

// swarmSize is the resource size of s, or the most its blocks can hold.
func (t *swarmTable) swarmSize(s *swarm) int64 {
	if t.cfg.SwarmSize != nil {
		if n, ok := t.cfg.SwarmSize(s.id); ok {
			return n
		}
	}
	return int64(s.blocks) * protocol.MaxBlockSize
}
