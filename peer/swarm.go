package peer

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// Report reasons, the coordinator's strings.
const (
	reasonBadBlock     = protocol.ReportBadBlock
	reasonProtocol     = protocol.ReportProtocol
	reasonUnresponsive = protocol.ReportUnresponsive
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
	closed bool
}

func newSwarm(c *Client, store *BlockStore) *swarm {
	return &swarm{c: c, id: store.Manifest().ID, store: store,
		conns: map[string]*conn{}, banned: map[string]bool{}}
}

// connect creates the conn to remote, as offerer or answerer, unless the
// swarm is full, closed, or remote was banned.
func (s *swarm) connect(remote string, offer bool) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.banned[remote] || s.conns[remote] != nil || len(s.conns) >= s.c.opts.MaxPeers {
		return nil
	}
	pc, err := s.c.rtc.newPeerConnection(s.c.siteICEServers())
	if err != nil {
		return nil
	}
	c := newConn(pc, remote, s.id, s, s.store, &s.c.wg)
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

func (s *swarm) introduce(in Introduction) {
	if in.Gone {
		s.mu.Lock()
		c := s.conns[in.Peer]
		s.mu.Unlock()
		if c != nil {
			c.close() // not a ban: it may be introduced again later
		}
		return
	}
	if s.dl != nil {
		s.dl.introduced()
	}
	if in.Offer {
		s.connect(in.Peer, true)
	}
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

// ban drops a peer for good in this swarm and reports it to the
// coordinator, which stops introducing it.
func (s *swarm) ban(c *conn, reason string) {
	s.mu.Lock()
	already := s.banned[c.remote]
	s.banned[c.remote] = true
	s.mu.Unlock()
	if !already && s.c.sig != nil {
		s.c.sig.Report(s.id, c.remote, reason)
	}
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
	conns := s.conns
	s.conns = map[string]*conn{}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}
