package peer

import (
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
	"github.com/pion/webrtc/v4"
)

// Flow control: a sender stops queueing pieces above highWater bytes
// buffered in the channel and resumes when pion reports it drained below
// lowWater, so a slow receiver costs at most highWater bytes of memory.
const (
	highWater = 1 << 20
	lowWater  = 256 << 10
	// maxUploadQueue bounds the requests a peer may queue at us; more are
	// rejected as busy.
	maxUploadQueue = 64
	// maxPendingCandidates bounds candidates that arrive before the remote
	// description.
	maxPendingCandidates = 64
)

// connHandler receives what a conn does not handle itself.
type connHandler interface {
	connOpen(c *conn)
	connMessage(c *conn, m protocol.WireMessage)
	connClosed(c *conn)
	// connTimedOut: the channel did not open within the connect timeout.
	connTimedOut(c *conn)
}

// conn is one RTCPeerConnection to a remote peer with its one reliable,
// ordered DataChannel. It answers requests itself from the store's verified
// blocks and hands everything else to its handler.
type conn struct {
	remote  string
	swarm   string
	pc      *webrtc.PeerConnection
	h       connHandler
	store   *BlockStore
	sendSig func(kind, data string)
	hooks   *testHooks
	upload  func(n int) // counts bytes sent in pieces
	wg      *goroutines // the Client's: Close waits for our goroutines
	// outcome, if set, is told how the attempt ended, once: set on the
	// offering side only, so an attempt is counted once.
	outcome func(ConnectionOutcome)
	started time.Time

	// sigMu orders what we signal: candidates wait until our offer or
	// answer has gone, because the other side drops candidates from a
	// peer it has no connection to yet, and it makes that connection on
	// the offer.
	sigMu     sync.Mutex
	localSent bool
	early     []string

	mu          sync.Mutex
	dc          *webrtc.DataChannel
	remoteSet   bool
	pendingCand []webrtc.ICECandidateInit
	queue       []protocol.WireRequest
	current     *protocol.WireRequest // being sent; nil'ed by a cancel

	wake      chan struct{} // upload queue not empty
	low       chan struct{} // buffered amount drained
	closed    chan struct{}
	closeOnce sync.Once
	opened    bool
	reported  bool
	heard     bool // the remote has sent us a signal
}

func newConn(pc *webrtc.PeerConnection, remote, swarm string, h connHandler, store *BlockStore, wg *goroutines, timeout time.Duration) *conn {
	c := &conn{
		remote: remote, swarm: swarm, pc: pc, h: h, store: store, wg: wg, started: time.Now(),
		wake:   make(chan struct{}, 1),
		low:    make(chan struct{}, 1),
		closed: make(chan struct{}),
	}
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		data := "" // end of candidates
		if cand != nil {
			b, err := json.Marshal(cand.ToJSON())
			if err != nil {
				return
			}
			data = string(b)
		}
		c.sigMu.Lock()
		defer c.sigMu.Unlock()
		if !c.localSent {
			c.early = append(c.early, data)
			return
		}
		c.sendSig(SignalCandidate, data)
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed {
			c.report(false)
		}
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			c.close()
		}
	})
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() != protocol.DataChannelLabel {
			_ = dc.Close()
			return
		}
		c.attach(dc)
	})
	// A conn that never opens must not hold a peer slot forever; the
	// handler reports it, so the coordinator frees the link too.
	t := time.AfterFunc(timeout, func() {
		c.mu.Lock()
		open := c.opened
		c.mu.Unlock()
		if !open {
			c.report(false)
			c.h.connTimedOut(c)
		}
	})
	go func() { <-c.closed; t.Stop() }()
	return c
}

// report tells c.outcome how the attempt ended, once: connected with the
// selected pair's path, or failed (only before the channel opened).
func (c *conn) report(connected bool) {
	c.mu.Lock()
	skip := c.outcome == nil || c.reported || (!connected && c.opened)
	c.reported = c.reported || !skip
	c.mu.Unlock()
	if skip {
		return
	}
	o := ConnectionOutcome{Swarm: c.swarm, Peer: c.remote, Connected: connected, Elapsed: time.Since(c.started)}
	if connected {
		o.Path = selectedPath(c.pc)
		if o.Path == "" {
			return // not knowing the path, claim nothing
		}
	}
	c.outcome(o)
}

// selectedPath is the kind of pc's selected candidate pair: the less
// direct of its two candidates (relay, srflx, prflx, host), "" if none.
func selectedPath(pc *webrtc.PeerConnection) string {
	sctp := pc.SCTP()
	if sctp == nil || sctp.Transport() == nil || sctp.Transport().ICETransport() == nil {
		return ""
	}
	pair, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil || pair.Remote == nil {
		return ""
	}
	for _, t := range []webrtc.ICECandidateType{webrtc.ICECandidateTypeRelay, webrtc.ICECandidateTypeSrflx,
		webrtc.ICECandidateTypePrflx, webrtc.ICECandidateTypeHost} {
		if pair.Local.Typ == t || pair.Remote.Typ == t {
			return t.String()
		}
	}
	return ""
}

// offer creates the channel and the offer; the answerer gets the channel
// through OnDataChannel.
func (c *conn) offer() error {
	dc, err := c.pc.CreateDataChannel(protocol.DataChannelLabel, nil) // reliable, ordered
	if err != nil {
		return err
	}
	c.attach(dc)
	sdp, err := c.pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := c.pc.SetLocalDescription(sdp); err != nil {
		return err
	}
	c.sendDescription(SignalOffer, sdp.SDP)
	return nil
}

// sendDescription sends our offer or answer, then the candidates gathered
// meanwhile: pion gathers on its own goroutines from SetLocalDescription
// on, so without this a candidate could overtake the offer and be lost.
func (c *conn) sendDescription(kind, sdp string) {
	c.sigMu.Lock()
	defer c.sigMu.Unlock()
	c.sendSig(kind, sdp)
	c.localSent = true
	for _, cand := range c.early {
		c.sendSig(SignalCandidate, cand)
	}
	c.early = nil
}

func (c *conn) attach(dc *webrtc.DataChannel) {
	c.mu.Lock()
	c.dc = dc
	c.mu.Unlock()
	dc.SetBufferedAmountLowThreshold(lowWater)
	dc.OnBufferedAmountLow(func() {
		select {
		case c.low <- struct{}{}:
		default:
		}
	})
	dc.OnOpen(func() {
		c.mu.Lock()
		c.opened = true
		c.mu.Unlock()
		c.report(true)
		c.wg.Go(c.uploadLoop) // refused while the Client closes
		c.h.connOpen(c)
	})
	dc.OnClose(c.close)
	dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		if msg.IsString {
			c.close() // the protocol is binary only
			return
		}
		m, err := protocol.DecodeWire(msg.Data)
		if err != nil {
			c.h.connMessage(c, nil) // a protocol violation: the handler reports it
			return
		}
		switch m := m.(type) {
		case *protocol.WireRequest:
			c.enqueue(*m)
		case *protocol.WireCancel:
			c.cancelUpload(*m)
		default:
			c.h.connMessage(c, m)
		}
	})
}

// handleSignal applies an offer, answer or candidate from the remote.
func (c *conn) handleSignal(sig Signal) error {
	c.mu.Lock()
	c.heard = true
	c.mu.Unlock()
	switch sig.Kind {
	case SignalOffer, SignalAnswer:
		typ := webrtc.SDPTypeOffer
		if sig.Kind == SignalAnswer {
			typ = webrtc.SDPTypeAnswer
		}
		if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: typ, SDP: sig.Data}); err != nil {
			return err
		}
		c.mu.Lock()
		c.remoteSet = true
		pending := c.pendingCand
		c.pendingCand = nil
		c.mu.Unlock()
		for _, cand := range pending {
			_ = c.pc.AddICECandidate(cand)
		}
		if typ == webrtc.SDPTypeAnswer {
			return nil
		}
		ans, err := c.pc.CreateAnswer(nil)
		if err != nil {
			return err
		}
		if err := c.pc.SetLocalDescription(ans); err != nil {
			return err
		}
		c.sendDescription(SignalAnswer, ans.SDP)
	case SignalCandidate:
		if sig.Data == "" {
			return nil
		}
		var cand webrtc.ICECandidateInit
		if err := json.Unmarshal([]byte(sig.Data), &cand); err != nil {
			return err
		}
		c.mu.Lock()
		if !c.remoteSet {
			if len(c.pendingCand) < maxPendingCandidates {
				c.pendingCand = append(c.pendingCand, cand)
			}
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()
		return c.pc.AddICECandidate(cand)
	default:
		return errors.New("peer: unknown signal kind " + sig.Kind)
	}
	return nil
}

// send encodes and sends one control message; errors mean the channel is
// closing, which OnClose reports.
func (c *conn) send(m protocol.WireMessage) {
	c.mu.Lock()
	dc := c.dc
	c.mu.Unlock()
	if dc == nil {
		return
	}
	if b, err := protocol.EncodeWire(m); err == nil {
		_ = dc.Send(b)
	}
}

func (c *conn) enqueue(r protocol.WireRequest) {
	m := c.store.Manifest()
	if r.Block >= len(m.Blocks) || r.Offset+r.Length > blockLen(m, r.Block) {
		c.send(&protocol.WireReject{Block: r.Block, Offset: r.Offset, Length: r.Length, Reason: protocol.RejectInvalid})
		return
	}
	if h := c.hooks; h != nil && (h.silent || h.reject != nil) {
		if h.reject != nil {
			c.send(&protocol.WireReject{Block: r.Block, Offset: r.Offset, Length: r.Length, Reason: *h.reject})
		}
		return
	}
	if !c.store.Has(r.Block) && (c.hooks == nil || !c.hooks.claimAll) {
		c.send(&protocol.WireReject{Block: r.Block, Offset: r.Offset, Length: r.Length, Reason: protocol.RejectNotHave})
		return
	}
	c.mu.Lock()
	if len(c.queue) >= maxUploadQueue {
		c.mu.Unlock()
		c.send(&protocol.WireReject{Block: r.Block, Offset: r.Offset, Length: r.Length, Reason: protocol.RejectBusy})
		return
	}
	c.queue = append(c.queue, r)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) cancelUpload(x protocol.WireCancel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.current; cur != nil && cur.Block == x.Block && cur.Offset == x.Offset && cur.Length == x.Length {
		c.current = nil
	}
	for i, r := range c.queue {
		if r.Block == x.Block && r.Offset == x.Offset && r.Length == x.Length {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			return
		}
	}
}

// uploadLoop serves queued requests one at a time, in chunks of at most
// MaxPieceData, waiting for the channel to drain above highWater.
func (c *conn) uploadLoop() {
	buf := make([]byte, c.store.Manifest().BlockSize)
	msg := make([]byte, 0, 9+protocol.MaxPieceData)
	for {
		c.mu.Lock()
		for len(c.queue) == 0 {
			c.mu.Unlock()
			select {
			case <-c.closed:
				return
			case <-c.wake:
			}
			c.mu.Lock()
		}
		r := c.queue[0]
		c.queue = c.queue[1:]
		c.current = &r
		cur, dc := c.current, c.dc
		c.mu.Unlock()

		data, err := c.store.ReadBlock(r.Block, buf)
		if err != nil {
			if c.hooks == nil || !c.hooks.claimAll {
				c.send(&protocol.WireReject{Block: r.Block, Offset: r.Offset, Length: r.Length, Reason: protocol.RejectNotHave})
			}
			continue // a liar in tests stays silent
		}
		data = data[r.Offset : r.Offset+r.Length]
		if c.hooks != nil && c.hooks.corrupt != nil && c.hooks.corrupt(r.Block) {
			data = append([]byte(nil), data...)
			data[0] ^= 0xff
		}
		for off := 0; off < len(data); off += protocol.MaxPieceData {
			if !c.waitDrained(dc) {
				return
			}
			c.mu.Lock()
			cancelled := c.current != cur
			c.mu.Unlock()
			if cancelled {
				break
			}
			end := min(off+protocol.MaxPieceData, len(data))
			if !c.trickle(end - off) {
				return
			}
			msg, err = protocol.AppendWire(msg[:0], &protocol.WirePiece{Block: r.Block, Offset: r.Offset + off, Data: data[off:end]})
			if err != nil || dc.Send(msg) != nil {
				return
			}
			c.upload(end - off)
		}
	}
}

// trickle paces n bytes of pieces for a misbehaving Client that trickles;
// false means the connection closed meanwhile.
func (c *conn) trickle(n int) bool {
	if c.hooks == nil || c.hooks.trickle <= 0 {
		return true
	}
	t := time.NewTimer(time.Duration(n) * time.Second / time.Duration(c.hooks.trickle))
	defer t.Stop()
	select {
	case <-c.closed:
		return false
	case <-t.C:
		return true
	}
}

func (c *conn) waitDrained(dc *webrtc.DataChannel) bool {
	for dc.BufferedAmount() > highWater {
		select {
		case <-c.closed:
			return false
		case <-c.low:
		}
	}
	select {
	case <-c.closed:
		return false
	default:
		return true
	}
}

// close tears the connection down once; pion's Close runs on its own
// goroutine because close may be called from pion's callbacks.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.closed)
		teardown := func() {
			_ = c.pc.Close()
			c.h.connClosed(c)
		}
		if !c.wg.Go(teardown) {
			go teardown() // the Client is closing and no longer waits for new goroutines
		}
	})
}

// stale reports whether c never opened and never heard from its remote
// although it is older than age: a slot an idle peer holds.
func (c *conn) stale(age time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.opened && !c.heard && time.Since(c.started) >= age
}

func blockLen(m *protocol.Manifest, i int) int {
	_, n := m.BlockRange(i)
	return n
}
