package peer

import (
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// SchedulerConfig tunes the BlockScheduler; zero fields take defaults.
type SchedulerConfig struct {
	// FirstBlocks go by HTTP at once, so a download starts before any peer
	// connects (default 1; ignored while the server is loaded).
	FirstBlocks int
	// InitialWindow and MaxWindow bound requests in flight per peer
	// (defaults 4 and 32).
	InitialWindow, MaxWindow int
	// RequestTimeout is the deadline of a peer request (default 8s).
	RequestTimeout time.Duration
	// EndgameBlocks: once every missing block is requested and at most
	// this many are missing, requests are duplicated (default 8; <0 never).
	EndgameBlocks int
	// LoadedGrace is how long a loaded server waits for peers before HTTP
	// fetches blocks no peer has (default 3s).
	LoadedGrace time.Duration
	// LonelyGrace ends that wait early when the coordinator has introduced
	// no peer at all by then (default 500ms): a swarm with nobody in it
	// will not help, and a lone visitor must not pay the loaded server's
	// grace.
	LonelyGrace time.Duration
	// MaxRejects is how many requests a peer may decline without delivering
	// a block in between before it is dropped (default 16): a peer that
	// claims blocks and refuses them is no help, only traffic.
	MaxRejects int
	// CoordinationGrace is how long HTTP waits at the start for the
	// coordinator's assignments when they are expected (default 500ms).
	CoordinationGrace time.Duration
	// StarveGrace: while HTTP follows assignments, once no peer has had a
	// request of ours for this long, HTTP fetches blocks no connected peer
	// has on its own (default 2s; LoadedGrace while the server is loaded).
	StarveGrace time.Duration
}

func (c SchedulerConfig) withDefaults() SchedulerConfig {
	if c.FirstBlocks == 0 {
		c.FirstBlocks = 1
	}
	if c.InitialWindow <= 0 {
		c.InitialWindow = 4
	}
	if c.MaxWindow < c.InitialWindow {
		c.MaxWindow = max(32, c.InitialWindow)
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 8 * time.Second
	}
	if c.EndgameBlocks == 0 {
		c.EndgameBlocks = 8
	}
	if c.LoadedGrace <= 0 {
		c.LoadedGrace = 3 * time.Second
	}
	if c.LonelyGrace <= 0 {
		c.LonelyGrace = 500 * time.Millisecond
	}
	if c.MaxRejects <= 0 {
		c.MaxRejects = 16
	}
	if c.CoordinationGrace <= 0 {
		c.CoordinationGrace = 500 * time.Millisecond
	}
	if c.StarveGrace <= 0 {
		c.StarveGrace = 2 * time.Second
	}
	return c
}

// BlockScheduler decides which block goes where: HTTP or which peer. It is
// pure bookkeeping with no I/O and no locking; the caller serialises calls.
// docs/PROTOCOL.md §4 ("Scheduler") describes the policy.
type BlockScheduler struct {
	cfg       SchedulerConfig
	done      []bool
	remaining int
	avail     []int // connected peers holding each block
	// sure counts the holders of each block that are not weak: a peer whose
	// window has shrunk below InitialWindow (it missed a deadline or
	// declined a request and has not made up for it), or whose pace keeps
	// fewer than that in flight, does not keep HTTP from a block, so a slow
	// peer, trickling just under the deadline, cannot set the pace of the
	// whole download.
	sure    []int
	late    []bool
	lateAt  []time.Time // when each block last turned late
	http    map[int]bool
	holders map[int]int // peer requests in flight per block
	peers   map[string]*schedPeer
	loaded  bool
	start   time.Time
	// pace is how long a block from any peer has taken lately (follow).
	pace time.Duration
	// introduced is set once the coordinator names any neighbour: peers
	// are on their way, so a loaded server's grace is worth waiting.
	introduced bool
	// coord is coordinated HTTP (scheduler_assign.go).
	coord coordState
}

type schedPeer struct {
	has      []bool
	window   int
	inflight map[int]time.Time // block → deadline
	skip     map[int]bool      // blocks this peer missed a deadline for or declined
	// owing is when the peer was asked for a block and has delivered none
	// since (zero when it owes nothing); rejects counts the requests it
	// declined since its last block. Either going too far makes it stalled.
	owing   time.Time
	rejects int
	proven  bool // it has delivered a block in this download
	// lastAt is when it last delivered a block we asked for; perBlock is
	// how long one block takes it (moving average), zero until measured.
	lastAt   time.Time
	perBlock time.Duration
}

// Expiry is a peer request that missed its deadline.
type Expiry struct {
	Peer  string
	Block int
}

// NewBlockScheduler schedules n blocks, of which done are already held.
func NewBlockScheduler(cfg SchedulerConfig, done []bool, now time.Time) *BlockScheduler {
	s := &BlockScheduler{
		cfg:     cfg.withDefaults(),
		done:    append([]bool(nil), done...),
		avail:   make([]int, len(done)),
		sure:    make([]int, len(done)),
		late:    make([]bool, len(done)),
		lateAt:  make([]time.Time, len(done)),
		http:    map[int]bool{},
		holders: map[int]int{},
		peers:   map[string]*schedPeer{},
		start:   now,
	}
	for _, d := range done {
		if !d {
			s.remaining++
		}
	}
	return s
}

// Done reports whether every block is held.
func (s *BlockScheduler) Done() bool { return s.remaining == 0 }

// Introduced records that the coordinator named a neighbour.
func (s *BlockScheduler) Introduced() { s.introduced = true }

// SetLoaded records the server's loaded hint.
func (s *BlockScheduler) SetLoaded(v bool) { s.loaded = v }

// AddPeer records a peer's bitfield from its hello.
func (s *BlockScheduler) AddPeer(id string, has []bool) {
	s.RemovePeer(id)
	p := &schedPeer{has: make([]bool, len(s.done)), window: s.cfg.InitialWindow,
		inflight: map[int]time.Time{}, skip: map[int]bool{}}
	s.peers[id] = p
	for i, h := range has {
		if h && i < len(p.has) {
			s.claim(p, i, true)
		}
	}
}

// RemovePeer forgets a peer and its claims; its requests in flight become
// free again.
func (s *BlockScheduler) RemovePeer(id string) {
	p := s.peers[id]
	if p == nil {
		return
	}
	for i := range p.inflight {
		s.holders[i]--
	}
	for i, h := range p.has {
		if h {
			s.claim(p, i, false)
		}
	}
	delete(s.peers, id)
}

// PeerHas records a have.
func (s *BlockScheduler) PeerHas(id string, i int) {
	if p := s.peers[id]; p != nil && i >= 0 && i < len(p.has) && !p.has[i] {
		s.claim(p, i, true)
	}
}

// claim sets or clears p's claim on block i in the counts.
func (s *BlockScheduler) claim(p *schedPeer, i int, has bool) {
	d := 1
	if !has {
		d = -1
	}
	p.has[i] = has
	s.avail[i] += d
	if !s.weak(p) {
		s.sure[i] += d
	}
}

// weak: p's window shrank below the initial one (it missed a deadline or
// declined), or, while HTTP follows its own rules, p's pace keeps fewer
// than that in flight (paced): HTTP should not wait for so slow a peer.
// While the coordinator assigns, a slow peer is not weak for its pace
// alone: the origin sends each block once, and a copy HTTP took from a
// slow peer would be one more.
func (s *BlockScheduler) weak(p *schedPeer) bool {
	return p.window < s.cfg.InitialWindow || s.coord.mode != coordOn &&
		p.perBlock > 0 && s.fits(p.perBlock) < s.cfg.InitialWindow
}

// recountSure counts sure again after what weak depends on changed for
// every peer at once.
func (s *BlockScheduler) recountSure() {
	clear(s.sure)
	for _, p := range s.peers {
		if !s.weak(p) {
			for i, h := range p.has {
				if h {
					s.sure[i]++
				}
			}
		}
	}
}

// setWindow changes p's window.
func (s *BlockScheduler) setWindow(p *schedPeer, w int) {
	s.reweigh(p, func() { p.window = w })
}

// reweigh applies change to p, moving its claims in or out of sure when
// it becomes weak or strong again.
func (s *BlockScheduler) reweigh(p *schedPeer, change func()) {
	was := s.weak(p)
	change()
	if now := s.weak(p); now != was {
		d := 1
		if now {
			d = -1
		}
		for i, h := range p.has {
			if h {
				s.sure[i] += d
			}
		}
	}
}

// Rejected frees a request the peer declined. notHave forgets that the
// peer holds the block; any other reason is treated like a missed
// deadline: the peer is not asked for that block again, HTTP or another
// peer may take it, and the window halves. It returns true when the peer
// has declined MaxRejects requests since its last block: drop it.
func (s *BlockScheduler) Rejected(id string, i int, reason protocol.RejectReason) bool {
	p := s.peers[id]
	if p == nil {
		return false
	}
	if _, asked := p.inflight[i]; !asked {
		return false // cancelled or expired meanwhile, or never asked: nothing to undo
	}
	s.release(p, i)
	p.rejects++
	if reason == protocol.RejectNotHave {
		if p.has[i] {
			s.claim(p, i, false)
		}
	} else {
		p.skip[i] = true
		s.late[i], s.lateAt[i] = true, time.Time{} // declined: no point waiting
		s.setWindow(p, max(1, p.window/2))
	}
	return p.rejects >= s.cfg.MaxRejects
}

// Stalled returns the peers that serve nothing useful, sorted: asked for
// blocks two RequestTimeouts ago or more and none delivered since (four for
// a peer that has delivered before), or MaxRejects requests declined since
// their last block. The caller drops them (RemovePeer), so what they
// claimed goes to HTTP or other peers. Progress does not wait that long: at
// the first missed deadline the peer turns weak and HTTP takes its blocks;
// the longer wait spares honest peers slowed down for a moment.
func (s *BlockScheduler) Stalled(now time.Time) []string {
	var out []string
	for id, p := range s.peers {
		wait := 2 * s.cfg.RequestTimeout
		if p.proven {
			wait *= 2
		}
		if p.rejects >= s.cfg.MaxRejects || !p.owing.IsZero() && now.Sub(p.owing) >= wait {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// paced is how many requests p may have in flight: its window, but no more
// than it delivers in half a request deadline at its measured pace. A peer
// serves our requests one after another, so a deep queue on a slow link
// (a busy CPU at either end) would miss deadlines for blocks it is about to
// send, and each miss sends a block the swarm has back to the origin; a
// shallower queue costs a slow link nothing, as it is full either way.
func (s *BlockScheduler) paced(p *schedPeer) int {
	per := p.perBlock
	if per <= 0 {
		per = s.pace // a new peer: at first, the pace of those before it
	}
	if per <= 0 {
		return p.window
	}
	return min(p.window, max(1, s.fits(per)))
}

// fits is how many blocks a peer delivers in half a request deadline when
// one takes per.
func (s *BlockScheduler) fits(per time.Duration) int { return int(s.cfg.RequestTimeout / 2 / per) }

// timeBlock learns p's pace from a block asked for at sent and delivered
// at now: it began on it when we asked or when it sent the previous one,
// whichever is later.
func (s *BlockScheduler) timeBlock(p *schedPeer, sent, now time.Time) {
	took := now.Sub(sent)
	if p.lastAt.After(sent) {
		took = now.Sub(p.lastAt)
	}
	p.lastAt = now
	s.reweigh(p, func() { p.perBlock = follow(p.perBlock, took) })
	s.pace = follow(s.pace, took)
}

// follow is a moving average that takes a slowdown at once and a speedup
// gradually: a queue sized on a pace the link no longer keeps misses its
// deadlines, one sized too shallow for a moment only idles the link briefly.
func follow(avg, took time.Duration) time.Duration {
	if avg <= 0 || took > avg {
		return took
	}
	return (3*avg + took) / 4
}

func (s *BlockScheduler) release(p *schedPeer, i int) {
	if _, ok := p.inflight[i]; ok {
		delete(p.inflight, i)
		s.holders[i]--
	}
}

// endgame is true when every missing block is already requested somewhere:
// then idle sources may duplicate requests so one slow peer cannot hold up
// the end.
func (s *BlockScheduler) endgame() bool {
	if s.remaining > s.cfg.EndgameBlocks {
		return false
	}
	for i, d := range s.done {
		if !d && s.holders[i] == 0 && !s.http[i] {
			return false
		}
	}
	return true
}

// NextForPeer returns blocks to request from peer id now, rarest first,
// filling its window, and marks them in flight with a deadline.
func (s *BlockScheduler) NextForPeer(id string, now time.Time) []int {
	p := s.peers[id]
	if p == nil {
		return nil
	}
	var out []int
	for len(p.inflight) < s.paced(p) {
		end := s.endgame()
		best, bestAvail, ties := -1, 0, 0
		for i, d := range s.done {
			if d || !p.has[i] || p.skip[i] {
				continue
			}
			if _, mine := p.inflight[i]; mine {
				continue
			}
			busy := s.holders[i] > 0 || s.http[i]
			if busy && (!end || s.holders[i] >= 2) {
				continue
			}
			switch {
			case best < 0 || s.avail[i] < bestAvail:
				best, bestAvail, ties = i, s.avail[i], 1
			case s.avail[i] == bestAvail:
				// Reservoir sampling: a random one among equally rare
				// blocks, so peers of one swarm spread over different ones.
				ties++
				if rand.IntN(ties) == 0 {
					best = i
				}
			}
		}
		if best < 0 {
			break
		}
		if p.owing.IsZero() {
			p.owing = now
		}
		p.inflight[best] = now.Add(s.cfg.RequestTimeout)
		s.holders[best]++
		out = append(out, best)
	}
	return out
}

// NextForHTTP returns a block for an HTTP range request, or false if HTTP
// should idle: first blocks, blocks that missed a peer deadline (or were
// declined) and blocks no connected peer has, weak peers not counted; in
// endgame a duplicate of a peer request. A loaded server gets only what
// peers cannot give.
func (s *BlockScheduler) NextForHTTP(now time.Time) (int, bool) {
	if i, ok, decided := s.nextCoordinated(now); decided {
		return i, ok
	}
	free := func(i int) bool { return !s.done[i] && !s.http[i] && s.holders[i] == 0 }
	take := func(i int) (int, bool) { s.http[i] = true; return i, true }
	if !s.loaded {
		for i := 0; i < min(s.cfg.FirstBlocks, len(s.done)); i++ {
			if free(i) {
				return take(i)
			}
		}
	}
	for i := range s.done {
		if free(i) && s.late[i] && (!s.loaded || s.availFor(i) == 0) {
			return take(i)
		}
	}
	waited := now.Sub(s.start)
	if !s.loaded || waited >= s.cfg.LoadedGrace || (!s.introduced && len(s.peers) == 0 && waited >= s.cfg.LonelyGrace) {
		// A random orphan, not the next one: peers cannot see each other's
		// HTTP requests in flight, and walking the file in order makes
		// them converge on the same few blocks once orphans grow sparse.
		pick, seen := -1, 0
		for i := range s.done {
			if free(i) && s.sure[i] == 0 {
				if seen++; rand.IntN(seen) == 0 {
					pick = i
				}
			}
		}
		if pick >= 0 {
			return take(pick)
		}
	}
	if !s.loaded && s.endgame() {
		for i := range s.done {
			if !s.done[i] && !s.http[i] {
				return take(i)
			}
		}
	}
	return 0, false
}

// availFor counts peers that hold block i, have not missed a deadline for
// it and are not weak.
func (s *BlockScheduler) availFor(i int) int {
	n := 0
	for _, p := range s.peers {
		if p.has[i] && !p.skip[i] && !s.weak(p) {
			n++
		}
	}
	return n
}

// HTTPFailed frees a block whose HTTP fetch failed or was cancelled.
func (s *BlockScheduler) HTTPFailed(i int) {
	delete(s.http, i)
	if s.coord.leased[i] {
		s.coord.queue = append([]int{i}, s.coord.queue...) // still ours to fetch
	}
}

// Completed marks block i held at now, delivered by peer from ("" for
// HTTP). It returns the peers whose duplicate requests lost (to cancel,
// sorted) and whether an HTTP fetch of it lost. The winner's window grows.
func (s *BlockScheduler) Completed(i int, from string, now time.Time) (losers []string, httpLost bool) {
	if p := s.peers[from]; p != nil {
		if dl, ok := p.inflight[i]; ok {
			s.setWindow(p, min(s.cfg.MaxWindow, p.window+1))
			s.timeBlock(p, dl.Add(-s.cfg.RequestTimeout), now)
		}
		s.release(p, i)
		// Useful: the clock restarts for what it still owes.
		p.proven = true
		p.rejects = 0
		p.owing = time.Time{}
		if len(p.inflight) > 0 {
			p.owing = now
		}
	}
	if from != "" {
		httpLost = s.http[i]
	}
	delete(s.http, i)
	for id, p := range s.peers {
		if _, ok := p.inflight[i]; ok {
			s.release(p, i)
			losers = append(losers, id)
			if len(p.inflight) == 0 {
				p.owing = time.Time{} // we withdrew what it owed
			}
		}
	}
	slices.Sort(losers)
	if !s.done[i] {
		s.done[i] = true
		s.remaining--
		s.coordCompleted(i)
	}
	return losers, httpLost
}

// Expire returns the requests past their deadline (sorted by peer and
// block), after freeing them, halving their peers' windows and marking the
// blocks late so HTTP or another peer takes them.
func (s *BlockScheduler) Expire(now time.Time) []Expiry {
	var out []Expiry
	for id, p := range s.peers {
		shrunk := false
		for i, dl := range p.inflight {
			if now.Before(dl) {
				continue
			}
			s.release(p, i)
			p.skip[i] = true
			s.late[i], s.lateAt[i] = true, now
			if !shrunk {
				s.setWindow(p, max(1, p.window/2))
				shrunk = true
			}
			out = append(out, Expiry{Peer: id, Block: i})
		}
	}
	slices.SortFunc(out, func(a, b Expiry) int {
		if a.Peer != b.Peer {
			return strings.Compare(a.Peer, b.Peer)
		}
		return a.Block - b.Block
	})
	return out
}
