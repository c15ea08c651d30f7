package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// writeWait bounds one WebSocket write, so a stuck server cannot block the
// write pump forever.
const writeWait = 10 * time.Second

// coordSession is one WebSocket connection: the read pump runs in the
// client's run goroutine, the write pump in its own, and they share a
// bounded queue of messages.
type coordSession struct {
	c    *CoordClient
	ws   *websocket.Conn
	out  chan protocol.CoordinatorMessage
	quit chan struct{}
	once sync.Once

	drain     chan struct{} // closed by finish: write what is queued, then stop
	drainOnce sync.Once
	cutoff    atomic.Pointer[time.Timer]
}

// drainTime bounds how long Close spends sending what is queued (the last
// stats and leaves) before it drops the connection.
const drainTime = time.Second

// finish stops the session after the queued messages are written, or after
// drainTime, whichever comes first.
func (s *coordSession) finish() {
	s.drainOnce.Do(func() {
		close(s.drain)
		s.cutoff.Store(time.AfterFunc(drainTime, s.stop))
	})
}

// enqueue queues m without blocking; false means the queue is full (or
// the session is ending) and m was dropped.
func (s *coordSession) enqueue(m protocol.CoordinatorMessage) bool {
	select {
	case <-s.quit:
		return false
	default:
	}
	select {
	case s.out <- m:
		return true
	default:
		return false
	}
}

// stop ends the session: the pumps exit and the socket closes.
func (s *coordSession) stop() {
	s.once.Do(func() {
		if t := s.cutoff.Load(); t != nil {
			t.Stop()
		}
		close(s.quit)
		// Best effort: tell the server we are going, then unblock the read.
		_ = s.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_ = s.ws.Close()
	})
}

// run connects, serves sessions and reconnects with back-off until Close.
func (c *CoordClient) run() {
	defer c.wg.Done()
	backoff := c.opts.MinBackoff
	for {
		sess, err := c.dial()
		if err == nil {
			backoff = c.opts.MinBackoff
			err = c.serve(sess)
			c.opts.Logf("p2pxhr: coordinator connection ended: %v", err)
		} else {
			c.opts.Logf("p2pxhr: coordinator %s: %v", c.wsURL, err)
		}
		c.mu.Lock()
		c.lastErr = err
		c.mu.Unlock()
		if c.ctx.Err() != nil || c.opts.NoReconnect {
			return
		}
		wait := backoff + rand.N(backoff/2+1)
		backoff = min(backoff*2, c.opts.MaxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// dial opens the WebSocket and completes hello/welcome.
func (c *CoordClient) dial() (*coordSession, error) {
	// Browsers send the page's origin; the coordinator accepts the same
	// origin as its Host, so ours is the site's.
	hdr := http.Header{"Origin": {c.origin}}
	ws, resp, err := c.opts.Dialer.DialContext(c.ctx, c.wsURL, hdr)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	ws.SetReadLimit(protocol.MaxCoordinatorMessageSize)
	// Close must not wait for a server that never says welcome.
	unwatch := context.AfterFunc(c.ctx, func() { ws.Close() })
	defer unwatch()
	fail := func(err error) (*coordSession, error) {
		ws.Close()
		return nil, err
	}
	hello, err := protocol.EncodeCoordinatorMessage(&protocol.Hello{Version: protocol.CoordinatorVersion, Group: c.opts.Group})
	if err != nil {
		return fail(err)
	}
	ws.SetWriteDeadline(time.Now().Add(writeWait))
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		return fail(err)
	}
	ws.SetReadDeadline(time.Now().Add(writeWait))
	_, data, err := ws.ReadMessage()
	if err != nil {
		return fail(err)
	}
	m, err := protocol.DecodeCoordinatorMessage(data)
	if err != nil {
		return fail(err)
	}
	w, ok := m.(*protocol.Welcome)
	if !ok {
		if e, isErr := m.(*protocol.Error); isErr {
			return fail(fmt.Errorf("refused: %s: %s", e.Code, e.Message))
		}
		return fail(fmt.Errorf("expected welcome, got %s", m.CoordinatorType()))
	}
	sess := &coordSession{c: c, ws: ws, out: make(chan protocol.CoordinatorMessage, c.opts.QueueSize),
		quit: make(chan struct{}), drain: make(chan struct{})}

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fail(errors.New("closed"))
	}
	c.sess, c.welcome, c.lastErr = sess, *w, nil
	// Rejoin every swarm with what it holds now; its counters restart
	// from what the previous membership was told.
	for id, s := range c.swarms {
		s.pending, s.base = nil, s.sent
		s.joined = sess.enqueue(&protocol.Join{Swarm: id, URL: s.url, Blocks: s.blocks, Bitfield: slices.Clone(s.have), Seed: s.seed})
		if s.joined && s.want > 0 && w.Assigns {
			sess.enqueue(&protocol.Fetch{Swarm: id, Want: s.want})
		}
	}
	c.mu.Unlock()
	c.readyOnce.Do(func() { close(c.ready) })
	c.setLoaded(w.Loaded)
	c.opts.Logf("p2pxhr: connected to the coordinator %s as %.8s…", c.wsURL, w.Peer)
	return sess, nil
}

// serve runs the session's pumps until it ends, and forgets it.
func (c *CoordClient) serve(sess *coordSession) error {
	c.wg.Add(1)
	done := make(chan struct{})
	go func() { defer c.wg.Done(); defer close(done); sess.writePump() }()
	err := sess.readPump()
	select {
	case <-sess.drain:
		// Close is draining the queue: the write pump stops the session
		// when done, within drainTime.
	default:
		sess.stop()
	}
	<-done
	c.mu.Lock()
	if c.sess == sess {
		c.sess = nil
	}
	for _, s := range c.swarms {
		s.joined, s.pending = false, nil
	}
	c.mu.Unlock()
	c.setLoaded(false) // without a coordinator, HTTP must carry the load
	return err
}

// setLoaded delivers the latest hint, replacing one not yet consumed.
func (c *CoordClient) setLoaded(v bool) {
	c.mu.Lock()
	changed := c.isLoaded != v
	c.isLoaded = v
	c.mu.Unlock()
	if !changed {
		return
	}
	select {
	case <-c.loaded:
	default:
	}
	select {
	case c.loaded <- v:
	default:
	}
}

func (s *coordSession) readPump() error {
	c := s.c
	ws := s.ws
	extend := func() { ws.SetReadDeadline(time.Now().Add(c.opts.PongWait)) }
	extend()
	ws.SetPongHandler(func(string) error { extend(); return nil })
	ws.SetPingHandler(func(data string) error {
		extend()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	for {
		typ, data, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		extend()
		if typ != websocket.TextMessage {
			continue
		}
		m, err := protocol.DecodeCoordinatorMessage(data)
		if err != nil {
			// A newer server may send what we do not know; skip it.
			c.opts.Logf("p2pxhr: coordinator sent an unreadable message: %v", err)
			continue
		}
		if !s.handle(m) {
			return errors.New("closed")
		}
	}
}

// handle delivers one server message; false means the client is closing.
func (s *coordSession) handle(m protocol.CoordinatorMessage) bool {
	c := s.c
	switch m := m.(type) {
	case *protocol.Neighbours:
		for _, p := range m.Peers {
			if !c.deliverIntro(Introduction{Swarm: m.Swarm, Peer: p.ID, Offer: p.Offer}) {
				return false
			}
		}
	case *protocol.PeerLeft:
		return c.deliverIntro(Introduction{Swarm: m.Swarm, Peer: m.Peer, Gone: true})
	case *protocol.Signal:
		sig := Signal{Swarm: m.Swarm, From: m.From, Kind: m.Kind, Data: m.Data}
		if m.Kind == SignalCandidate && m.Data != "" && m.Data[0] != '{' {
			// The peer side wants the JSON of an RTCIceCandidateInit.
			mid := m.Mid
			if mid == "" {
				mid = "0"
			}
			b, err := json.Marshal(webrtc.ICECandidateInit{Candidate: m.Data, SDPMid: &mid})
			if err != nil {
				return true
			}
			sig.Data = string(b)
		}
		select {
		case c.signals <- sig:
		case <-c.ctx.Done():
			return false
		}
	case *protocol.Load:
		c.setLoaded(m.Loaded)
	case *protocol.Assign:
		select {
		case c.assigns <- Assignment{Swarm: m.Swarm, Blocks: m.Blocks}:
		case <-c.ctx.Done():
			return false
		}
	case *protocol.Error:
		c.opts.Logf("p2pxhr: coordinator error %s: %s", m.Code, m.Message)
		if m.Swarm != "" {
			switch m.Code {
			case protocol.ErrCodeUnknownSwarm, protocol.ErrCodeSwarmFull, protocol.ErrCodeBlockCount,
				protocol.ErrCodeTooManySwarms, protocol.ErrCodeNotJoined:
				// Not a member this session: stop sending what it would refuse.
				c.mu.Lock()
				if cs := c.swarms[m.Swarm]; cs != nil {
					cs.joined, cs.pending = false, nil
				}
				c.mu.Unlock()
			}
			if m.Code == protocol.ErrCodeUnknownSwarm {
				c.rejoinLater(s, m.Swarm)
			}
		}
	}
	return true
}

func (c *CoordClient) deliverIntro(in Introduction) bool {
	select {
	case c.neighbours <- in:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// writePump writes queued messages, batched haves and stats, and pings,
// never faster than the server's rate limit allows.
func (s *coordSession) writePump() {
	c := s.c
	c.mu.Lock()
	lim := c.welcome.Limits
	c.mu.Unlock()
	// A margin under the server's bucket: jitter on the way can bunch
	// messages that left evenly spaced.
	rate, burst := 10.0, 20.0
	if lim.MessagesPerSecond > 0 {
		rate = float64(lim.MessagesPerSecond) * 0.8
	}
	if lim.MessageBurst > 0 {
		burst = max(1, float64(lim.MessageBurst)/2)
	}
	bucket := tokenBucket{rate: rate, burst: burst, tokens: burst, last: time.Now()}

	ping := time.NewTicker(c.opts.PingPeriod)
	defer ping.Stop()
	flush := time.NewTicker(c.opts.HaveDelay)
	defer flush.Stop()
	statsEvery := max(1, int(c.opts.StatsInterval/c.opts.HaveDelay))
	ticks := 0

	write := func(m protocol.CoordinatorMessage) bool {
		b, err := protocol.EncodeCoordinatorMessage(m)
		if err != nil {
			c.opts.Logf("p2pxhr: not sending %s: %v", m.CoordinatorType(), err)
			return true
		}
		if d := bucket.wait(time.Now()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-s.quit:
				t.Stop()
				return false
			case <-t.C:
			}
		}
		s.ws.SetWriteDeadline(time.Now().Add(writeWait))
		if err := s.ws.WriteMessage(websocket.TextMessage, b); err != nil {
			s.stop()
			return false
		}
		return true
	}
	flushHaves := func(withStats bool) bool {
		var due []protocol.CoordinatorMessage
		c.mu.Lock()
		for id, cs := range c.swarms {
			if cs.joined {
				due = append(due, c.flushLocked(id, cs, withStats)...)
			}
		}
		c.mu.Unlock()
		for _, m := range due {
			if !write(m) {
				return false
			}
		}
		return true
	}
	for {
		select {
		case <-s.quit:
			return
		case <-s.drain:
			for {
				select {
				case m := <-s.out:
					if !write(m) {
						return
					}
				default:
					s.stop()
					return
				}
			}
		case m := <-s.out:
			if !write(m) {
				return
			}
		case <-ping.C:
			if err := s.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				s.stop()
				return
			}
		case <-flush.C:
			ticks++
			if !flushHaves(ticks%statsEvery == 0) {
				return
			}
		case <-c.flushNow:
			if !flushHaves(false) {
				return
			}
		}
	}
}

// tokenBucket paces our messages under the server's per-connection limit.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

// wait takes one token and returns how long to wait before using it.
func (b *tokenBucket) wait(now time.Time) time.Duration {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}
