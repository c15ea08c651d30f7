package peer

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// Report reasons, the coordinator's strings.
const (
	reasonBadBlock     = protocol.ReportBadBlock
	reasonProtocol     = protocol.ReportProtocol
	reasonUnresponsive = protocol.ReportUnresponsive
	reasonUnreachable  = protocol.ReportUnreachable
	reasonFull         = protocol.ReportFull
)

// swarm is this Client's membership in one swarm: its connections, the
// store it serves from, and the download it feeds when it is downloading.
type swarm struct {
	c     *Client
	id    string
	store *BlockStore
	dl    *download // nil when only seeding

	uploaded atomic.Int64 // bytes sent to peers of this swarm, for Stats

	mu     sync.Mutex
	conns  map[string]*conn
	banned map[string]bool
	// awaiting holds the peers we are to answer, until their offer comes.
	awaiting map[string]*time.Timer
	closed   bool
}

func newSwarm(c *Client, store *BlockStore) *swarm {
	return &swarm{c: c, id: store.Manifest().ID, store: store,
		conns: map[string]*conn{}, banned: map[string]bool{}, awaiting: map[string]*time.Timer{}}
}

// connect creates the conn to remote, as offerer or answerer, unless the
// swarm is closed or remote was banned. At MaxPeers it makes room by
// dropping a conn that never heard from its remote, or declines the link
// ("full") so the coordinator frees it on both sides.
func (s *swarm) connect(remote string, offer bool) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.banned[remote] || s.conns[remote] != nil {
		return nil
	}
	if len(s.conns) >= s.c.opts.MaxPeers && !s.evictLocked() {
		s.reportLocked(remote, reasonFull)
		return nil
	}
	pc, err := s.c.rtc.newPeerConnection(s.c.siteICEServers())
	if err != nil {
		return nil
	}
	c := newConn(pc, remote, s.id, s, s.store, &s.c.wg, s.c.opts.ConnectTimeout)
	c.hooks = s.c.opts.hooks
	if offer {
		c.outcome = s.c.connectionOutcome
	}
	c.upload = func(n int) {
		s.uploaded.Add(int64(n))
		s.c.uploaded.Add(int64(n))
	}
	c.sendSig = func(kind, data string) {
		_ = s.c.sig.Send(context.Background(), remote, Signal{Swarm: s.id, To: remote, Kind: kind, Data: data})
	}
	s.conns[remote] = c
	if offer {
		if err := c.offer(); err != nil {
			c.close()
		}
	}
	return c
}

// evictLocked drops the oldest conn that never heard from its remote in a
// fifth of the connect timeout, reporting it unreachable: an idle peer must
// not keep a real one out. s.mu is held.
func (s *swarm) evictLocked() bool {
	var old *conn
	for _, c := range s.conns {
		if c.stale(s.c.opts.ConnectTimeout/5) && (old == nil || c.started.Before(old.started)) {
			old = c
		}
	}
	if old == nil {
		return false
	}
	delete(s.conns, old.remote)
	s.reportLocked(old.remote, reasonUnreachable)
	old.close()
	return true
}

// reportLocked tells the coordinator about a neighbour, once, and never
// connects to it again in this swarm. s.mu is held.
func (s *swarm) reportLocked(remote, reason string) {
	already := s.banned[remote]
	s.banned[remote] = true

	if t := s.awaiting[remote]; t != nil {
		t.Stop()
		delete(s.awaiting, remote)
	}
	if !already && s.c.sig != nil {
		s.c.sig.Report(s.id, remote, reason)
	}
}

func (s *swarm) introduce(in Introduction) {
	if in.Gone {
		s.mu.Lock()
		c := s.conns[in.Peer]
		if t := s.awaiting[in.Peer]; t != nil {
			t.Stop()
			delete(s.awaiting, in.Peer)
		}
		s.mu.Unlock()
		if c != nil {
			c.report(false) // an attempt we offered that had not opened: it failed
			c.close()       // not a ban: it may be introduced again later
		}
		return
	}
	if s.dl != nil {
		s.dl.introduced()
	}
	if in.Offer {
		s.connect(in.Peer, true)
		return
	}
	s.await(in.Peer)
}

// await expects an offer from a peer we were told to answer; a peer that
// sends none in a third of the connect timeout holds the link for nothing
// (an idle joiner), and is reported unreachable.
func (s *swarm) await(remote string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.banned[remote] || s.conns[remote] != nil || s.awaiting[remote] != nil {
		return
	}
	s.awaiting[remote] = time.AfterFunc(s.c.opts.ConnectTimeout/3, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.awaiting[remote] == nil || s.closed {
			return
		}
		delete(s.awaiting, remote)
		if s.conns[remote] == nil {
			s.reportLocked(remote, reasonUnreachable)
		}
	})
}

// stats are this membership's totals, cumulative since it joined.
func (s *swarm) stats() SwarmStats {
	st := SwarmStats{Uploaded: s.uploaded.Load()}
	if s.dl != nil {
		st.FromHTTP, st.FromPeers = s.dl.fromHTTP.Load(), s.dl.fromPeers.Load()
	}
	return st
}

func (s *swarm) signal(sig Signal) {
	s.mu.Lock()
	c := s.conns[sig.From]
	if t := s.awaiting[sig.From]; t != nil && sig.Kind == SignalOffer {
		t.Stop()
		delete(s.awaiting, sig.From)
	}
	s.mu.Unlock()
	if c == nil && sig.Kind == SignalOffer {
		c = s.connect(sig.From, false)
	}
	if c == nil {
		return
	}
	if err := c.handleSignal(sig); err != nil {
		c.close()
	}
}

// connOpen sends our hello: the first message on every channel.
func (s *swarm) connOpen(c *conn) {
	bf := s.store.Bitfield()
	if h := s.c.opts.hooks; h != nil && h.claimAll {
		for i := range s.store.Manifest().Blocks {
			bf.Set(i)
		}
	}
	c.send(&protocol.WireHello{Version: protocol.WireVersion, SwarmID: s.id,
		BlockCount: len(s.store.Manifest().Blocks), Bitfield: bf})
}

func (s *swarm) connMessage(c *conn, m protocol.WireMessage) {
	if h, ok := m.(*protocol.WireHello); ok && (h.SwarmID != s.id || h.BlockCount != len(s.store.Manifest().Blocks)) {
		m = nil // another swarm's peer: never mix versions
	}
	if m == nil {
		s.ban(c, reasonProtocol)
		return
	}
	if h := s.c.opts.hooks; h != nil && h.falseReport != "" && m.WireType() == protocol.WireTypeHello && s.c.sig != nil {
		s.c.sig.Report(s.id, c.remote, h.falseReport) // a sybil's lie
	}
	if s.dl != nil {
		s.dl.peerMessage(c, m)
	}
}

func (s *swarm) connClosed(c *conn) {
	s.mu.Lock()
	if s.conns[c.remote] == c {
		delete(s.conns, c.remote)
	}
	s.mu.Unlock()
	if s.dl != nil {
		s.dl.peerGone(c)
	}
}

// connTimedOut reports a link whose channel never opened, so the
// coordinator frees it on both sides.
func (s *swarm) connTimedOut(c *conn) { s.ban(c, reasonUnreachable) }

// ban drops a peer for good in this swarm and reports it to the
// coordinator, which unlinks the two and weighs the report.
func (s *swarm) ban(c *conn, reason string) {
	s.mu.Lock()
	s.reportLocked(c.remote, reason)
	s.mu.Unlock()
	c.close()
}

// announce tells connected peers and the coordinator about a new block.
func (s *swarm) announce(i int) {
	if !s.store.CanServe() {
		return
	}
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.send(&protocol.WireHave{Block: i})
	}
	if s.c.sig != nil {
		s.c.sig.Have(s.id, []int{i})
	}
}

// shutdown closes every connection; the caller leaves the swarm.
func (s *swarm) shutdown() {
	s.mu.Lock()
	s.closed = true
	for _, t := range s.awaiting {
		t.Stop()
	}
	conns := s.conns
	s.conns = map[string]*conn{}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// assigned takes blocks the coordinator assigned to this swarm's download,
// or gives them back when nothing here downloads any more.
func (s *swarm) assigned(blocks []int) {
	if s.dl != nil && s.dl.assigned(blocks) {
		return
	}
	if a, ok := s.c.sig.(HTTPAssigner); ok {
		a.Release(s.id, blocks)
	}
}
