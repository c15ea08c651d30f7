package peer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// schedTick is how often deadlines are checked and idle HTTP workers look
// for work they may have become allowed to do.
const schedTick = 50 * time.Millisecond

// download drives one attempt at one manifest version: peers and HTTP
// workers feed the same store under one BlockScheduler.
type download struct {
	s        *swarm
	resource string

	mu        sync.Mutex
	sched     *BlockScheduler
	asm       map[string]map[int]*assembly // peer → block → bytes so far
	httpStop  map[int]context.CancelFunc
	peersUsed map[string]bool
	vouched   map[string]bool // neighbours we told the coordinator delivered

	// Coordinated HTTP (assign.go): the coordinator's side, the want last
	// told (0: none since the session began), and the mean time one HTTP
	// block takes.
	assigner HTTPAssigner
	sentWant int
	perBlock time.Duration

	fromHTTP, fromPeers atomic.Int64
	done                chan struct{}
	doneOnce            sync.Once
	fail                chan error // first fatal error (origin changed)
	wake                chan struct{}
}

type assembly struct {
	buf []byte
	got int
}

func newDownload(s *swarm, resource string) *download {
	d := &download{
		s: s, resource: resource,
		sched:     NewBlockScheduler(s.c.opts.Scheduler, s.store.Have(), time.Now()),
		asm:       map[string]map[int]*assembly{},
		httpStop:  map[int]context.CancelFunc{},
		peersUsed: map[string]bool{},
		vouched:   map[string]bool{},
		done:      make(chan struct{}),
		fail:      make(chan error, 1),
		wake:      make(chan struct{}, 1),
	}
	if a, ok := s.c.sig.(HTTPAssigner); ok {
		d.assigner = a
		d.sched.ExpectCoordination()
	}
	if d.sched.Done() {
		close(d.done)
	}
	return d
}

// coordinate follows the coordinator: HTTP takes its assignments while it
// gives them, and it hears how many this download wants and what HTTP took
// on its own.
func (d *download) coordinate() {
	if d.assigner == nil {
		return
	}
	on := d.assigner.Assigning(d.s.id)
	d.mu.Lock()
	d.sched.Coordinate(on)
	var want int
	var claims []int
	if on {
		want = wantFor(d.s.c.opts.HTTPConcurrency, d.perBlock)
		claims = d.sched.TakeClaims()
	}
	send := on && (want != d.sentWant || len(claims) > 0)
	d.sentWant = want
	d.mu.Unlock()
	if send {
		d.assigner.Fetch(d.s.id, want, claims)
	}
}

// assigned queues blocks the coordinator leased to this download; false
// once it has ended.
func (d *download) assigned(blocks []int) bool {
	select {
	case <-d.done:
		return false
	default:
	}
	d.mu.Lock()
	d.sched.Assigned(blocks)
	d.mu.Unlock()
	d.kick()
	return true
}

// run fetches until the store is complete, ctx ends, or the origin changed.
func (d *download) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // no write of this attempt after we return
	for w := 0; w < d.s.c.opts.HTTPConcurrency; w++ {
		wg.Add(1)
		go func() { defer wg.Done(); d.httpWorker(ctx) }()
	}
	d.coordinate()
	t := time.NewTicker(schedTick)
	defer t.Stop()
	for {
		select {
		case <-d.done:
			return nil
		case err := <-d.fail:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			d.coordinate()
			d.expire()
			d.kick()
		}
	}
}

// failWith ends the attempt with err (the first one wins).
func (d *download) failWith(err error) {
	select {
	case d.fail <- err:
	default:
	}
}

func (d *download) kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// introduced tells the scheduler that peers are on their way.
func (d *download) introduced() {
	d.mu.Lock()
	d.sched.Introduced()
	d.mu.Unlock()
}

func (d *download) setLoaded(v bool) {
	d.mu.Lock()
	d.sched.SetLoaded(v)
	d.mu.Unlock()
	d.kick()
}

func (d *download) httpWorker(ctx context.Context) {
	m := d.s.store.Manifest()
	buf := make([]byte, m.BlockSize)
	for {
		d.mu.Lock()
		i, ok := d.sched.NextForHTTP(time.Now())
		var bctx context.Context
		var stop context.CancelFunc
		if ok {
			bctx, stop = context.WithCancel(ctx)
			d.httpStop[i] = stop
		}
		d.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-d.wake:
			}
			continue
		}
		t0 := time.Now()
		data, err := fetchBlock(bctx, d.s.c.opts.HTTPClient, d.resource, m, i, buf)
		if err == nil {
			var added bool
			added, err = d.s.store.Put(i, data)
			if errors.Is(err, ErrBadBlock) {
				err = fmt.Errorf("%v: %w", err, ErrOriginChanged)
			}
			if err == nil {
				stop()
				d.completed(i, "", added, len(data))
				d.httpDone(time.Since(t0))
				continue
			}
		}
		stop()
		d.mu.Lock()
		delete(d.httpStop, i)
		d.sched.HTTPFailed(i)
		d.mu.Unlock()
		if errors.Is(err, ErrOriginChanged) || errors.Is(err, ErrWrite) {
			d.failWith(err)
			return
		}
		if ctx.Err() != nil {
			return
		}
		// A lost duplicate or a transient failure: back off a tick.
		select {
		case <-ctx.Done():
			return
		case <-time.After(schedTick):
		}
	}
}

// httpDone learns how long an HTTP block takes, and hurries the haves
// along when few assignments are left in hand (the next ones come only
// once the coordinator hears of these).
func (d *download) httpDone(took time.Duration) {
	if d.assigner == nil {
		return
	}
	d.mu.Lock()
	if d.perBlock == 0 {
		d.perBlock = took
	} else {
		d.perBlock = (3*d.perBlock + took) / 4
	}
	_, queued := d.sched.Leased()
	low := d.sched.Coordinated() && queued < d.s.c.opts.HTTPConcurrency
	d.mu.Unlock()
	if low {
		d.assigner.FlushHaves()
	}
}

// completed books a verified, stored block and cancels its duplicates.
func (d *download) completed(i int, from string, added bool, n int) {
	d.mu.Lock()
	losers, httpLost := d.sched.Completed(i, from, time.Now())
	if httpLost {
		if stop := d.httpStop[i]; stop != nil {
			stop()
		}
	}
	delete(d.httpStop, i)
	for _, l := range losers {
		delete(d.asm[l], i)
	}
	if added && from != "" {
		d.peersUsed[from] = true
	}
	vouch := from != "" && !d.vouched[from]
	if vouch {
		d.vouched[from] = true
	}
	finished := d.sched.Done()
	d.mu.Unlock()
	if vouch && d.s.c.sig != nil {
		d.s.c.sig.Received(d.s.id, from)
	}

	m := d.s.store.Manifest()
	for _, l := range losers {
		if c := d.conn(l); c != nil {
			c.send(&protocol.WireCancel{Block: i, Offset: 0, Length: blockLen(m, i)})
		}
	}
	if added {
		if from == "" {
			d.fromHTTP.Add(int64(n))
		} else {
			d.fromPeers.Add(int64(n))
		}
		d.s.announce(i)
		d.s.c.progress(d)
	}
	if finished {
		d.doneOnce.Do(func() { close(d.done) })
		return
	}
	d.pumpAll()
}

func (d *download) conn(id string) *conn {
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	return d.s.conns[id]
}

// pump fills c's request window.
func (d *download) pump(c *conn) {
	m := d.s.store.Manifest()
	d.mu.Lock()
	blocks := d.sched.NextForPeer(c.remote, time.Now())
	if len(blocks) > 0 && d.asm[c.remote] == nil {
		d.asm[c.remote] = map[int]*assembly{}
	}
	for _, i := range blocks {
		d.asm[c.remote][i] = &assembly{buf: make([]byte, blockLen(m, i))}
	}
	d.mu.Unlock()
	for _, i := range blocks {
		c.send(&protocol.WireRequest{Block: i, Offset: 0, Length: blockLen(m, i)})
	}
}

func (d *download) pumpAll() {
	d.s.mu.Lock()
	conns := make([]*conn, 0, len(d.s.conns))
	for _, c := range d.s.conns {
		conns = append(conns, c)
	}
	d.s.mu.Unlock()
	for _, c := range conns {
		d.pump(c)
	}
	d.kick()
}

// expire cancels requests past their deadline and drops the peers that
// serve nothing useful, so their blocks go to HTTP or other peers.
func (d *download) expire() {
	m := d.s.store.Manifest()
	now := time.Now()
	d.mu.Lock()
	exp := d.sched.Expire(now)
	for _, e := range exp {
		delete(d.asm[e.Peer], e.Block)
	}
	stalled := d.sched.Stalled(now)
	for _, id := range stalled {
		d.forgetLocked(id)
	}
	d.mu.Unlock()
	for _, e := range exp {
		if c := d.conn(e.Peer); c != nil {
			c.send(&protocol.WireCancel{Block: e.Block, Offset: 0, Length: blockLen(m, e.Block)})
		}
	}
	for _, id := range stalled {
		if c := d.conn(id); c != nil {
			d.s.ban(c, reasonUnresponsive)
		}
	}
	if len(exp) > 0 || len(stalled) > 0 {
		d.pumpAll()
	}
}

// forgetLocked drops a peer from the scheduler at once, before its
// connection has finished closing, so nothing more is asked of it.
func (d *download) forgetLocked(id string) {
	d.sched.RemovePeer(id)
	delete(d.asm, id)
}

// peerMessage handles what a peer sends us as a downloader.
func (d *download) peerMessage(c *conn, msg protocol.WireMessage) {
	switch msg := msg.(type) {
	case *protocol.WireHello:
		has := make([]bool, msg.BlockCount)
		for i := range has {
			has[i] = msg.Bitfield.Has(i)
		}
		d.mu.Lock()
		d.sched.AddPeer(c.remote, has)
		d.mu.Unlock()
		d.pump(c)
	case *protocol.WireHave:
		d.mu.Lock()
		d.sched.PeerHas(c.remote, msg.Block)
		d.mu.Unlock()
		d.pump(c)
	case *protocol.WireReject:
		d.mu.Lock()
		delete(d.asm[c.remote], msg.Block)
		drop := d.sched.Rejected(c.remote, msg.Block, msg.Reason)
		if drop {
			d.forgetLocked(c.remote)
		}
		d.mu.Unlock()
		if drop {
			d.s.ban(c, reasonUnresponsive)
			d.pumpAll()
			return
		}
		d.pump(c)
	case *protocol.WirePiece:
		d.piece(c, msg)
	}
}

func (d *download) piece(c *conn, p *protocol.WirePiece) {
	d.mu.Lock()
	a := d.asm[c.remote][p.Block]
	if a == nil {
		d.mu.Unlock()
		return // cancelled or expired: a late piece, harmless
	}
	if p.Offset != a.got || a.got+len(p.Data) > len(a.buf) {
		d.mu.Unlock()
		d.s.ban(c, reasonProtocol) // pieces of a request come in order and fit
		return
	}
	a.got += copy(a.buf[a.got:], p.Data)
	if a.got < len(a.buf) {
		d.mu.Unlock()
		return
	}
	delete(d.asm[c.remote], p.Block)
	d.mu.Unlock()

	added, err := d.s.store.Put(p.Block, a.buf)
	if errors.Is(err, ErrBadBlock) {
		// Nothing was written. The peer is dropped and reported; its
		// requests go back to the scheduler when the conn closes.
		d.s.ban(c, reasonBadBlock)
		return
	}
	if err != nil {
		d.failWith(err) // our disk, not the peer's fault
		return
	}
	d.completed(p.Block, c.remote, added, len(a.buf))
}

func (d *download) peerGone(c *conn) {
	d.mu.Lock()
	d.sched.RemovePeer(c.remote)
	delete(d.asm, c.remote)
	d.mu.Unlock()
	d.pumpAll()
}
