package coordinator

import (
	"go.uber.org/zap"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// Peer ids are free: anyone can open WebSocket connections and report. So a
// report is not a vote; the coordinator weighs what it can see
// (docs/PROTOCOL.md §3.6):
//
//   - A bad-block or protocol report counts only if the coordinator relayed
//     signalling both ways between reporter and accused over their link:
//     they really tried to connect.
//   - Reporters count by network (IPv4 /24, IPv6 /48, the locality key),
//     not by id: many connections from one host are one witness.
//   - Members that received verified blocks from the accused (the received
//     message) speak for it, by network too. A ban needs at least
//     BanReporters networks reporting, and more than speak for it.
//   - A reporter loses its standing (its reports and vouches stop counting)
//     when it reports a peer that BanReporters other networks vouch for, or
//     reports more than maxAccusations peers in one swarm and more than half
//     of those it exchanged signalling with; a banned peer's word stops
//     counting too.
//
// Links that never open because a member never signalled on them are
// blamed on it, not banned: blamed members are ranked last and may not take
// anyone's last K link slots (neighbours.go), so idle joiners cannot
// eclipse a seeder. An unresponsive report only ends the link: a channel
// that stalls says as much about the path between two peers (or a loaded
// machine) as about either of them, and honest peers drop each other so.

const (
	// maxEvidence bounds each evidence map of a member.
	maxEvidence = 64
	// maxAccusations is how many peers one member may report bad in a
	// swarm, beyond half of those it met, before its reports stop counting:
	// honest peers meet few liars among many peers.
	maxAccusations = 3
	// suspectNetMembers: once this many members of one network were
	// suspects, newcomers from it start as suspects until vouched for, so
	// an idle host cannot come back under fresh ids.
	suspectNetMembers = 2
)

// evidence is what the coordinator knows of one member's conduct in a
// swarm. Maps are allocated on first use.
type evidence struct {
	// tried holds the neighbours this member sent a signal to over their
	// current link.
	tried map[string]struct{}
	// credit, accusers and blamers map other members' ids to their
	// networks: those that received verified blocks from this member,
	// whose bad-block or protocol reports of it count, and that found it
	// idle or unresponsive.
	credit, accusers, blamers map[string]string
	// accused, blamed and vouched are whom this member reported bad,
	// blamed and vouched for, to withdraw its word when it loses standing.
	accused, blamed, vouched map[string]struct{}
	// exchanged counts its links on which both sides signalled.
	exchanged      int
	discredited    bool
	countedSuspect bool // already counted in swarm.suspectNets
	// bornSuspect: it joined from a network whose members had been
	// suspects, so it is one until someone vouches for it.
	bornSuspect bool
}

func addTo[V any](m *map[string]V, k string, v V) {
	if *m == nil {
		*m = make(map[string]V)
	}
	if _, ok := (*m)[k]; ok || len(*m) < maxEvidence {
		(*m)[k] = v
	}
}

// networks counts the distinct networks among a map's values, leaving out
// except.
func networks(m map[string]string, except string) int {
	seen := make(map[string]struct{}, len(m))
	for _, n := range m {
		if n != except {
			seen[n] = struct{}{}
		}
	}
	return len(seen)
}

// standing reports whether m's word counts.
func (s *swarm) standing(m *member) bool { return !m.ev.discredited && !s.banned[m.id] }

// signalled records that from sent a signal to its neighbour to.
func (t *swarmTable) signalled(s *swarm, from *member, to string) {
	if _, ok := from.ev.tried[to]; ok {
		return
	}
	addTo(&from.ev.tried, to, struct{}{})
	if o := s.members[to]; o != nil {
		if _, ok := o.ev.tried[from.id]; ok {
			from.ev.exchanged++
			o.ev.exchanged++
		}
	}
}

// forgetLink clears what two members tried on a link that is gone.
func forgetLink(a, b *member) {
	delete(a.ev.tried, b.id)
	delete(b.ev.tried, a.id)
}

// received records that from got a verified block from its neighbour.
func (t *swarmTable) received(from string, r *protocol.Received) {
	s, mem := t.memberOf(from, r.Swarm)
	if mem == nil {
		return
	}
	if _, ok := mem.links[r.Peer]; !ok {
		t.fail(from, s.id, protocol.ErrCodeNotIntroduced, "peer %.8s… is not your neighbour in this swarm", r.Peer)
		return
	}
	p := s.members[r.Peer]
	if p == nil || !s.standing(mem) {
		return
	}
	if _, accused := mem.ev.accused[p.id]; accused {
		return
	}
	addTo(&p.ev.credit, mem.id, mem.net)
	addTo(&mem.ev.vouched, p.id, struct{}{})
	if s.assign != nil {
		s.assign.vouched(p) // its blocks now keep the origin from assigning them
	}
}

// weigh applies the evidence of one report; bothTried is whether the two
// had signalled each other over the link the report ends.
func (t *swarmTable) weigh(s *swarm, reporter, accused *member, reason string, bothTried bool) {
	if accused == nil || !s.standing(reporter) || s.banned[accused.id] {
		return
	}
	switch reason {
	case protocol.ReportBadBlock, protocol.ReportProtocol:
		if bothTried {
			t.accuse(s, reporter, accused)
		}
	case protocol.ReportUnreachable:
		if _, ok := accused.ev.tried[reporter.id]; !ok {
			t.blame(s, reporter, accused) // it never did its part
		}
	}
}

func (t *swarmTable) accuse(s *swarm, r, a *member) {
	delete(a.ev.credit, r.id) // its own word for a is withdrawn
	delete(r.ev.vouched, a.id)
	if networks(a.ev.credit, r.net) >= t.cfg.BanReporters {
		t.discredit(s, r, "reported a peer others vouch for")
		return
	}
	addTo(&r.ev.accused, a.id, struct{}{})
	if n := len(r.ev.accused); n > maxAccusations && 2*n > r.ev.exchanged {
		t.discredit(s, r, "reported most peers it met")
		return
	}
	addTo(&a.ev.accusers, r.id, r.net)
	if n := networks(a.ev.accusers, ""); n >= t.cfg.BanReporters && n > networks(a.ev.credit, "") {
		s.banned[a.id] = true
		t.totals.bans++
		t.withdraw(s, a)
		t.cfg.Logger.Info("peer banned from swarm after reports", zap.String("swarm", s.id), zap.String("peer", a.id),
			zap.Int("reporting_networks", n))
	}
}

func (t *swarmTable) blame(s *swarm, r, a *member) {
	addTo(&a.ev.blamers, r.id, r.net)
	addTo(&r.ev.blamed, a.id, struct{}{})
	if !a.ev.countedSuspect && t.suspect(s, a) {
		a.ev.countedSuspect = true
		if s.suspectNets == nil {
			s.suspectNets = make(map[string]int)
		}
		s.suspectNets[a.net]++
	}
}

// discredit takes away r's standing: what it said of others stops counting.
func (t *swarmTable) discredit(s *swarm, r *member, why string) {
	r.ev.discredited = true
	t.withdraw(s, r)
	t.cfg.Logger.Info("reporter lost its standing", zap.String("swarm", s.id), zap.String("peer", r.id), zap.String("why", why))
}

// withdraw removes r's reports, blames and vouches from their subjects.
func (t *swarmTable) withdraw(s *swarm, r *member) {
	for id := range r.ev.accused {
		if m := s.members[id]; m != nil {
			delete(m.ev.accusers, r.id)
		}
	}
	for id := range r.ev.blamed {
		if m := s.members[id]; m != nil {
			delete(m.ev.blamers, r.id)
		}
	}
	for id := range r.ev.vouched {
		if m := s.members[id]; m != nil {
			delete(m.ev.credit, r.id)
		}
	}
	r.ev.accused, r.ev.blamed, r.ev.vouched = nil, nil, nil
}

// suspect reports whether m is to be kept from others' last link slots:
// blamed by more networks than vouch for it, or joined from a network whose
// members were suspects before and not vouched for since.
func (t *swarmTable) suspect(s *swarm, m *member) bool {
	if len(m.ev.blamers) == 0 && (len(m.ev.credit) > 0 || !m.ev.bornSuspect) {
		return false
	}
	credit := networks(m.ev.credit, "")
	if b := networks(m.ev.blamers, ""); b > 0 && b > credit {
		return true
	}
	return credit == 0 && m.ev.bornSuspect
}

// joined marks a newcomer from a network that had suspects.
func (t *swarmTable) joined(s *swarm, m *member) {
	m.ev.bornSuspect = s.suspectNets[m.net] >= suspectNetMembers
}
