package coordinator

import (
	"container/heap"
	"math/bits"
	"math/rand/v2"
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// Swarm-wide HTTP coordination (docs/PROTOCOL.md §3.9). A member says how
// many blocks it wants to fetch from the origin at once (Fetch.Want); the
// swarm keeps it supplied with blocks that no trusted member holds and
// nobody is fetching, chosen at random so members spread over different blocks. Each
// is leased to one member until its Have arrives, it releases it, it
// leaves, or the lease runs out: then the block goes to someone else.

// Lease durations follow how long fetches take in this swarm: leaseFactor
// times the recent mean time from assignment to Have, within [minLease,
// maxLease]; firstLease before any fetch completed.
const (
	firstLease  = 8 * time.Second
	minLease    = 2 * time.Second
	maxLease    = 30 * time.Second
	leaseFactor = 4
	// leaseTick is how often the coordinator ends leases that ran out and
	// hands their blocks on, when nothing else happens in a swarm.
	leaseTick = 250 * time.Millisecond
	// rejoinGrace: the blocks a trusted member held stay counted this long
	// after it leaves, and count again if it rejoins on the same
	// connection meanwhile (a Go peer's download ends and its seeding
	// starts), rather than going back to the origin at once.
	rejoinGrace = 2 * time.Second
)

// leaseClock is the time leases are measured by; tests set their own.
var leaseClock = time.Now

// assignments is one swarm's HTTP coordination state, made on the first
// Fetch. It keeps its own count of holders per block, updated from joins,
// haves and leaves.
//
// A bitfield is a claim anyone can make. So only trusted holders keep a
// block from being assigned: a member another member vouched for
// (received), or one that fetched the block from the origin under its own
// lease. A member that claims every block and serves none cannot keep the
// origin from the swarm.
type assignments struct {
	holders []int32 // members holding each block
	trusted []int32 // trusted holders of each block
	// trustedBy: members whose every block counts; own: blocks a member
	// not trusted yet fetched under its own lease.
	trustedBy map[*member]bool
	own       map[*member]map[int32]bool
	// free holds the blocks no trusted member holds and none has leased;
	// pos is each block's index in free, or -1.
	free []int32
	pos  []int32
	// leases by block; expiry orders them by end. lapsed remembers whose
	// lease of a block ran out, until someone gets the block.
	leases  map[int32]*lease
	lapsed  map[int32]*leaseHolder
	expiry  leaseHeap
	members map[string]*leaseHolder
	// departed: members that left holding trusted blocks, by peer id,
	// within rejoinGrace.
	departed map[string]*departed
	// mean is the recent mean fetch time (assignment to Have), 0 until
	// one completes.
	mean time.Duration
	now  func() time.Time
	seq  uint64 // Fetches seen, to order waiting members
}

// departed is what a member that left still counts for, until it rejoins
// or rejoinGrace passes.
type departed struct {
	at      time.Time
	trusted bool    // vouched for: all its blocks counted
	counted []int32 // the blocks it counted for in trusted
}

type lease struct {
	block int32
	owner *leaseHolder
	start time.Time
	end   time.Time
	index int // in expiry
}

// leaseHolder is a member that asked for blocks.
type leaseHolder struct {
	mem  *member
	want int // leases it wants at once
	held int // leases it has
	// stalled: a lease of it ran out; it gets no more until it completes
	// one, so a stuck member does not take block after block.
	stalled bool
	// waitSeq orders members waiting for blocks: first asked, first
	// served.
	waitSeq uint64
}

func (h *leaseHolder) room() int {
	if h.stalled {
		return 0
	}
	return max(0, h.want-h.held)
}

// newAssignments builds the state of s from its members' bitfields.
func newAssignments(s *swarm, now func() time.Time) *assignments {
	a := &assignments{holders: make([]int32, s.blocks), trusted: make([]int32, s.blocks), pos: make([]int32, s.blocks),
		trustedBy: map[*member]bool{}, own: map[*member]map[int32]bool{},
		leases: map[int32]*lease{}, lapsed: map[int32]*leaseHolder{}, members: map[string]*leaseHolder{},
		departed: map[string]*departed{}, now: now}
	for _, m := range s.members {
		a.each(m, func(b int32) { a.holders[b]++ })
		if vouchedFor(m) {
			a.trustedBy[m] = true
			a.each(m, func(b int32) { a.trusted[b]++ })
		}
	}
	for b := range a.pos {
		a.pos[b] = -1
		if a.trusted[b] == 0 {
			a.addFree(int32(b))
		}
	}
	return a
}

// vouchedFor reports whether another member received a verified block
// from m (any network: a wrong vouch only delays the origin, so members of
// one network, the visitors of one office, count for each other here).
func vouchedFor(m *member) bool { return len(m.ev.credit) > 0 }

// vouched records that m may now be vouched for: its blocks start to count.
func (a *assignments) vouched(m *member) {
	if a.trustedBy[m] || !vouchedFor(m) {
		return
	}
	a.trustedBy[m] = true
	own := a.own[m]
	delete(a.own, m)
	a.each(m, func(b int32) {
		if !own[b] {
			a.trusted[b]++
			a.removeFree(b)
		}
	})
}

// each calls f for every block m holds.
func (a *assignments) each(m *member, f func(b int32)) {
	for i, byt := range m.bits {
		for ; byt != 0; byt &= byt - 1 {
			// Bit 7 - k of byte i is block i*8 + k (most significant first).
			if b := i*8 + 7 - bits.TrailingZeros8(byt); b < len(a.holders) {
				f(int32(b))
			}
		}
	}
}

func (a *assignments) addFree(b int32) {
	if a.pos[b] < 0 {
		a.pos[b] = int32(len(a.free))
		a.free = append(a.free, b)
	}
}

func (a *assignments) removeFree(b int32) {
	i := a.pos[b]
	if i < 0 {
		return
	}
	last := a.free[len(a.free)-1]
	a.free[i], a.pos[last] = last, i
	a.free = a.free[:len(a.free)-1]
	a.pos[b] = -1
}

// leaseDuration is how long a new lease stands.
func (a *assignments) leaseDuration() time.Duration {
	if a.mean == 0 {
		return firstLease
	}
	return min(maxLease, max(minLease, leaseFactor*a.mean))
}

// grant leases b to h.
func (a *assignments) grant(h *leaseHolder, b int32, now time.Time) {
	a.removeFree(b)
	l := &lease{block: b, owner: h, start: now, end: now.Add(a.leaseDuration())}
	a.leases[b] = l
	heap.Push(&a.expiry, l)
	h.held++
}

// drop ends the lease of b, if any, and frees b when nobody holds it.
func (a *assignments) drop(b int32) {
	l := a.leases[b]
	if l == nil {
		return
	}
	delete(a.leases, b)
	heap.Remove(&a.expiry, l.index)
	l.owner.held--
	if a.trusted[b] == 0 {
		a.addFree(b)
	}
}

// expire ends the leases past their end; their owners count as stalled.
func (a *assignments) expire(now time.Time) {
	for len(a.expiry) > 0 && !now.Before(a.expiry[0].end) {
		l := a.expiry[0]
		l.owner.stalled = true
		a.lapsed[l.block] = l.owner
		a.drop(l.block)
	}
}

// supply gives h free blocks it lacks, at random, up to what it has room
// for.
func (a *assignments) supply(h *leaseHolder, now time.Time) []int {
	var out []int
	for n := h.room(); len(out) < n && len(a.free) > 0; {
		// A random start, then the first free block h lacks (free blocks
		// may be held by members not trusted yet, h among them).
		k, start := -1, rand.IntN(len(a.free))
		for j := range len(a.free) {
			if i := (start + j) % len(a.free); !h.mem.bits.Has(int(a.free[i])) {
				k = i
				break
			}
		}
		if k < 0 {
			break
		}
		b := a.free[k]
		a.grant(h, b, now)
		out = append(out, int(b))
	}
	return out
}

// fetch records a member's Fetch: its claims become its leases where
// nobody else holds or fetches the block, and it wants Want at once.
func (a *assignments) fetch(m *member, f *protocol.Fetch) {
	now := a.now()
	a.seq++
	h := a.members[m.id]
	if h == nil {
		h = &leaseHolder{mem: m}
		a.members[m.id] = h
	}
	for _, c := range f.Claim {
		if b := int32(c); c < len(a.holders) && a.trusted[b] == 0 && a.leases[b] == nil {
			a.grant(h, b, now)
		}
	}
	if h.want == 0 || f.Want == 0 {
		h.waitSeq = a.seq
	}
	h.want = f.Want
}

// have records that m now holds b. Its own lease of b ends; anyone's ends
// once a trusted member holds b. A stalled member that completes a block
// it was fetching is stalled no more.
func (a *assignments) have(m *member, b int32) {
	a.holders[b]++
	l := a.leases[b]
	mine := l != nil && l.owner.mem == m
	switch {
	case a.trustedBy[m]:
		a.trusted[b]++
	case mine:
		// Fetched from the origin under its own lease.
		if a.own[m] == nil {
			a.own[m] = map[int32]bool{}
		}
		a.own[m][b] = true
		a.trusted[b]++
	}
	if a.trusted[b] > 0 {
		a.removeFree(b)
	}
	if h := a.lapsed[b]; h != nil {
		if h.mem == m {
			h.stalled = false
		}
		delete(a.lapsed, b)
	}
	if l == nil || (!mine && a.trusted[b] == 0) {
		return
	}
	if mine {
		d := a.now().Sub(l.start)
		if a.mean == 0 {
			a.mean = d
		} else {
			a.mean = (3*a.mean + d) / 4
		}
		l.owner.stalled = false
	}
	a.drop(b)
}

// release ends m's leases of blocks.
func (a *assignments) release(m *member, blocks []int) {
	for _, c := range blocks {
		if c < 0 || c >= len(a.holders) {
			continue
		}
		if l := a.leases[int32(c)]; l != nil && l.owner.mem == m {
			a.drop(int32(c))
		}
	}
}

// joined counts a new member's blocks (they count for assignments once
// it is vouched for). A member rejoining within rejoinGrace keeps the
// standing its blocks had: those it still holds stay counted.
func (a *assignments) joined(m *member) {
	d := a.departed[m.id]
	delete(a.departed, m.id)
	trusted := vouchedFor(m) || (d != nil && d.trusted)
	if trusted {
		a.trustedBy[m] = true
	}
	kept := map[int32]bool{}
	if d != nil {
		for _, b := range d.counted {
			kept[b] = false
		}
	}
	a.each(m, func(b int32) {
		a.holders[b]++
		if _, ok := kept[b]; ok {
			kept[b] = true
			if !trusted {
				if a.own[m] == nil {
					a.own[m] = map[int32]bool{}
				}
				a.own[m][b] = true
			}
		} else if trusted {
			a.trusted[b]++
			a.removeFree(b)
		}
	})
	for b, still := range kept {
		if !still {
			a.untrust(b)
		}
	}
}

// untrust takes one trusted holder off b, freeing b when none is left.
func (a *assignments) untrust(b int32) {
	if a.trusted[b]--; a.trusted[b] == 0 && a.leases[b] == nil {
		a.addFree(b)
	}
}

// forget ends the grace of members that left more than rejoinGrace ago:
// blocks only they held are free again.
func (a *assignments) forget(now time.Time) {
	for id, d := range a.departed {
		if now.Sub(d.at) >= rejoinGrace {
			delete(a.departed, id)
			for _, b := range d.counted {
				a.untrust(b)
			}
		}
	}
}

// left forgets a member: its leases end at once, and blocks only it held
// are free again after rejoinGrace unless it rejoins (someone must fetch
// them from the origin once more).
func (a *assignments) left(m *member) {
	trusted, own := a.trustedBy[m], a.own[m]
	delete(a.trustedBy, m)
	delete(a.own, m)
	var counted []int32
	a.each(m, func(b int32) {
		a.holders[b]--
		if trusted || own[b] {
			counted = append(counted, b)
		}
	})
	if len(counted) > 0 {
		a.departed[m.id] = &departed{at: a.now(), trusted: trusted, counted: counted}
	}
	for b, l := range a.leases {
		if l.owner.mem == m {
			a.drop(b)
		}
	}
	for b, h := range a.lapsed {
		if h.mem == m {
			delete(a.lapsed, b)
		}
	}
	delete(a.members, m.id)
}

// pushed is an Assign for one member.
type pushed struct {
	to     *member
	blocks []int
}

// serve ends leases that ran out and supplies every member with room,
// first asked first served; it returns what to send.
func (a *assignments) serve() []pushed {
	now := a.now()
	a.expire(now)
	a.forget(now)
	if len(a.free) == 0 {
		return nil
	}
	var hungry []*leaseHolder
	for _, h := range a.members {
		if h.room() > 0 {
			hungry = append(hungry, h)
		}
	}
	if len(hungry) == 0 {
		return nil
	}
	// Stable order: who asked first.
	sortHolders(hungry)
	var out []pushed
	for _, h := range hungry {
		if got := a.supply(h, now); len(got) > 0 {
			out = append(out, pushed{h.mem, got})
		}
		if len(a.free) == 0 {
			break
		}
	}
	return out
}

func sortHolders(hs []*leaseHolder) {
	for i := 1; i < len(hs); i++ {
		for j := i; j > 0 && hs[j].waitSeq < hs[j-1].waitSeq; j-- {
			hs[j], hs[j-1] = hs[j-1], hs[j]
		}
	}
}

// leaseHeap orders leases by end.
type leaseHeap []*lease

func (h leaseHeap) Len() int           { return len(h) }
func (h leaseHeap) Less(i, j int) bool { return h[i].end.Before(h[j].end) }
func (h leaseHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *leaseHeap) Push(x any) {
	l := x.(*lease)
	l.index = len(*h)
	*h = append(*h, l)
}
func (h *leaseHeap) Pop() any {
	old := *h
	l := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return l
}

// Hooks from the swarm table (swarm.go), all under its lock.

// fetch handles a member's Fetch.
func (t *swarmTable) fetch(from string, f *protocol.Fetch) {
	s, mem := t.memberOf(from, f.Swarm)
	if mem == nil {
		return
	}
	for _, c := range f.Claim {
		if c >= s.blocks {
			t.fail(from, s.id, protocol.ErrCodeBadBlockIndex, "block %d past the last block (%d)", c, s.blocks-1)
			return
		}
	}
	if s.assign == nil {
		s.assign = newAssignments(s, leaseClock)
	}
	s.assign.fetch(mem, f)
	t.pushAssigns(s)
}

// releaseLeases handles a member's Release.
func (t *swarmTable) releaseLeases(from string, r *protocol.Release) {
	s, mem := t.memberOf(from, r.Swarm)
	if mem == nil || s.assign == nil {
		return
	}
	s.assign.release(mem, r.Blocks)
	t.pushAssigns(s)
}

// pushAssigns sends what the swarm's assignments hand out now.
func (t *swarmTable) pushAssigns(s *swarm) {
	if s.assign == nil {
		return
	}
	lease := int(s.assign.leaseDuration() / time.Millisecond)
	for _, p := range s.assign.serve() {
		t.publish(Message{To: p.to.id, Node: p.to.node, Swarm: s.id,
			Body: &protocol.Assign{Swarm: s.id, Blocks: p.blocks, Lease: lease}})
	}
}

// tickLeases ends leases that ran out in every swarm and hands their
// blocks on: in a swarm where nothing else happens, nothing else would.
func (t *swarmTable) tickLeases() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.node = ""
	for _, s := range t.swarms {
		if s.assign != nil && (len(s.assign.expiry) > 0 || len(s.assign.departed) > 0) {
			t.pushAssigns(s)
		}
	}
}
