package coordinator

import (
	"net/netip"
	"sort"
)

// scanWindow bounds how many members one neighbour choice looks at, so a
// join costs the same in a swarm of 500 and of 50,000. Only members below
// MaxDegree are scanned (swarm.open): whole up to this many, else in a
// window that rotates from one choice to the next.
const scanWindow = 512

// candidate is a member ranked for one chooser.
type candidate struct {
	m       *member
	suspect bool // blamed for links that never opened (it never signalled)
	seeder  bool // holds every block, and the chooser does not
	quarter int  // 0: nothing useful; 1..4: quarters of the chooser's gap it fills
	sameNet bool
}

// choose picks up to K minus the current degree new neighbours for a, best
// first. The rules, in order (docs/PROTOCOL.md, "Neighbour choice"):
//
//  0. suspects last (evidence.go): members blamed for links that never
//     opened (they never signalled) more than others vouch for them.
//  1. usefulness: seeders first, then peers holding more of the blocks a
//     lacks, counted in quarters of what a lacks so that rule 2 can still
//     separate peers that help about as much. A peer that lacks nothing
//     ranks others by how much it can give them instead.
//  2. the same network: IPv4 /24 or IPv6 /48.
//  3. lower current degree, to spread load.
//  4. earlier join, for determinism.
//
// Never a itself, a peer it already has, a peer banned from the swarm, a
// peer either side reported, or a peer at MaxDegree. A seeder (which does
// not download) is never linked to a peer lacking none of the blocks it
// holds, another seeder included; a seeder choosing ranks peers by how
// much it can give them. A suspect chooser gets only peers with at least K
// free slots: idle joiners can never take anyone's last K.
func (t *swarmTable) choose(s *swarm, a *member) []*member {
	want := t.cfg.MaxNeighbours - len(a.links)
	if want <= 0 || s.banned[a.id] {
		return nil
	}
	degree := t.cfg.MaxDegree
	if t.suspect(s, a) {
		degree -= t.cfg.MaxNeighbours
	}
	lacking := s.blocks - a.count
	n := len(s.open)
	window := n
	start := 0
	if n > scanWindow {
		window, start = scanWindow, s.cursor%n
		s.cursor = (s.cursor + scanWindow) % n
	}
	cands := make([]candidate, 0, min(window, 64))
	for i := 0; i < window; i++ {
		c := s.open[(start+i)%n]
		if c == a || len(c.links) >= degree || s.banned[c.id] {
			continue
		}
		if _, ok := a.links[c.id]; ok {
			continue
		}
		if _, ok := a.avoid[c.id]; ok {
			continue
		}
		if _, ok := c.avoid[a.id]; ok {
			continue
		}
		if a.seed && c.seed || useless(c, a, lacking) || useless(a, c, s.blocks-c.count) {
			continue
		}
		k := candidate{m: c, suspect: t.suspect(s, c), sameNet: a.net != "" && a.net == c.net}
		if lacking > 0 && !a.seed {
			k.seeder = c.count == s.blocks
			k.quarter = quarters(c.bits.CountMissing(a.bits), lacking)
		} else {
			k.quarter = quarters(a.bits.CountMissing(c.bits), s.blocks-c.count)
		}
		cands = append(cands, k)
	}
	sort.Slice(cands, func(i, j int) bool { return better(cands[i], cands[j]) })
	if len(cands) > want {
		cands = cands[:want]
	}
	out := make([]*member, len(cands))
	for i, c := range cands {
		out[i] = c.m
	}
	return out
}

func better(x, y candidate) bool {
	switch {
	case x.suspect != y.suspect:
		return !x.suspect
	case x.seeder != y.seeder:
		return x.seeder
	case x.quarter != y.quarter:
		return x.quarter > y.quarter
	case x.sameNet != y.sameNet:
		return x.sameNet
	case len(x.m.links) != len(y.m.links):
		return len(x.m.links) < len(y.m.links)
	}
	return x.m.seq < y.m.seq
}

// quarters maps useful blocks out of a gap to 0 (none) or 1..4.
func quarters(useful, gap int) int {
	if useful <= 0 || gap <= 0 {
		return 0
	}
	return min(4, (4*useful+gap-1)/gap)
}

// networkKey names the network a client is on, for locality: the IPv4 /24
// or the IPv6 /48. Unknown addresses have no network.
func networkKey(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	ip = ip.Unmap()
	bits := 48
	if ip.Is4() {
		bits = 24
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}
