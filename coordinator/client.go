package coordinator

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// closeGrace is how long a closing side waits for the client's close frame
// before dropping the TCP connection, so the client reads our close code
// rather than a reset.
const closeGrace = time.Second

// client is one WebSocket connection: a read pump (the handler goroutine)
// and a write pump, joined by a bounded send queue, as in gorilla's chat.
type client struct {
	c        *Coordinator
	ws       *websocket.Conn
	site     string // Config.Site of the upgrade request
	addr     string // AddressKey of its client IP
	net      string
	send     chan []byte
	quit     chan struct{} // closed once: the write pump closes with closeCode
	readDone chan struct{} // closed when the read pump has finished
	once     sync.Once
	code     int
	reason   string
	welcomed atomic.Bool

	// iceServers are told in the welcome; set before the pumps start.
	iceServers []protocol.ICEServer

	// Set by the read pump before welcomed is stored, read-only after.
	id     string
	group  string
	detach func()

	mu     sync.Mutex
	swarms map[string]struct{}
}

func newClient(c *Coordinator, ws *websocket.Conn, site, addr, netKey string) *client {
	return &client{c: c, ws: ws, site: site, addr: addr, net: netKey, send: make(chan []byte, c.cfg.SendQueue),
		quit: make(chan struct{}), readDone: make(chan struct{}), swarms: make(map[string]struct{})}
}

// shutdown asks the write pump to close the connection with code.
func (cl *client) shutdown(code int, reason string) {
	cl.once.Do(func() {
		cl.code, cl.reason = code, clipReason(reason)
		close(cl.quit)
	})
}

// fail tells the client what was wrong, then closes with code.
func (cl *client) fail(code int, errCode, msg, swarm string) {
	cl.sendError(errCode, msg, swarm)
	cl.shutdown(code, msg)
}

// enqueue queues an encoded message without ever blocking: a client whose
// queue is full is too slow to keep up and is dropped.
func (cl *client) enqueue(b []byte) {
	select {
	case <-cl.quit:
	case cl.send <- b:
	default:
		cl.shutdown(websocket.CloseTryAgainLater, protocol.ErrCodeSlowReader)
	}
}

func (cl *client) sendMessage(m protocol.CoordinatorMessage) {
	b, err := protocol.EncodeCoordinatorMessage(m)
	if err != nil {
		cl.c.log.Error("encoding a coordinator message", zap.String("type", m.CoordinatorType()), zap.Error(err))
		return
	}
	cl.enqueue(b)
}

func (cl *client) sendError(code, msg, swarm string) {
	cl.sendMessage(&protocol.Error{Code: code, Message: clipText(msg, protocol.MaxErrorMessageSize), Swarm: swarm})
}

// deliver is the Backplane's way in; it runs in the publisher's goroutine.
func (cl *client) deliver(m Message) {
	if e, ok := m.Body.(*protocol.Error); ok && e.Swarm != "" &&
		(e.Code == protocol.ErrCodeSwarmFull || e.Code == protocol.ErrCodeBlockCount) {
		// The join did not happen: free the slot it took.
		cl.mu.Lock()
		delete(cl.swarms, e.Swarm)
		cl.mu.Unlock()
	}
	cl.sendMessage(m.Body)
}

func (cl *client) writePump() {
	ping := time.NewTicker(cl.c.cfg.PingPeriod)
	defer func() {
		ping.Stop()
		cl.ws.Close()
		cl.c.wg.Done()
	}()
	wait := cl.c.cfg.WriteWait
	write := func(typ int, b []byte) bool {
		cl.ws.SetWriteDeadline(time.Now().Add(wait))
		if err := cl.ws.WriteMessage(typ, b); err != nil {
			cl.shutdown(websocket.CloseAbnormalClosure, "")
			return false
		}
		return true
	}
	for {
		select {
		case b := <-cl.send:
			if !write(websocket.TextMessage, b) {
				return
			}
		case <-ping.C:
			if !write(websocket.PingMessage, nil) {
				return
			}
		case <-cl.quit:
			// Flush what was queued (the error explaining the close), then
			// the close frame, then give the client a moment to answer.
			for n := len(cl.send); n > 0; n-- {
				if !write(websocket.TextMessage, <-cl.send) {
					return
				}
			}
			if cl.code != websocket.CloseAbnormalClosure {
				cl.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(cl.code, cl.reason),
					time.Now().Add(wait))
			}
			grace := time.NewTimer(closeGrace)
			select {
			case <-cl.readDone:
			case <-grace.C:
			}
			grace.Stop()
			return
		}
	}
}

func (cl *client) readPump() {
	defer cl.cleanup()
	cfg := &cl.c.cfg
	// The largest message is a join; DecodeCoordinatorMessage holds the
	// others to protocol.MaxCoordinatorMessageSize.
	cl.ws.SetReadLimit(protocol.MaxJoinMessageSize)
	cl.ws.SetReadDeadline(time.Now().Add(cfg.HelloTimeout))
	bucket := tokenBucket{rate: float64(cfg.MessagesPerSecond), burst: float64(cfg.MessageBurst)}
	for {
		typ, data, err := cl.ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				// gorilla has sent 1009 already.
				cl.shutdown(websocket.CloseMessageTooBig, "message too large")
			} else {
				cl.shutdown(websocket.CloseNormalClosure, "")
			}
			return
		}
		if !cl.receive(&bucket, typ, data) {
			cl.linger()
			return
		}
		if cl.welcomed.Load() {
			cl.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
		}
	}
}

// linger discards input until the client answers our close frame or the
// grace time passes, so the client sees the close code and not a reset.
func (cl *client) linger() {
	cl.ws.SetReadDeadline(time.Now().Add(closeGrace))
	for {
		if _, _, err := cl.ws.ReadMessage(); err != nil {
			return
		}
	}
}

func (cl *client) cleanup() {
	welcomed := cl.welcomed.Load()
	if cl.detach != nil {
		cl.detach()
	}
	cl.mu.Lock()
	swarms := make([]string, 0, len(cl.swarms))
	for s := range cl.swarms {
		swarms = append(swarms, s)
	}
	cl.swarms = nil
	cl.mu.Unlock()
	for _, s := range swarms {
		cl.c.bp.Publish(Message{Swarm: s, From: cl.id, Body: &protocol.Leave{Swarm: s}})
	}
	cl.c.unregister(cl, welcomed)
	close(cl.readDone)
	cl.c.wg.Done()
}

// receive handles one frame; false means the connection is closing.
func (cl *client) receive(bucket *tokenBucket, typ int, data []byte) bool {
	if !bucket.take(time.Now()) {
		cl.fail(websocket.ClosePolicyViolation, protocol.ErrCodeRateLimited, "message rate limit exceeded", "")
		return false
	}
	if typ != websocket.TextMessage {
		cl.fail(websocket.CloseUnsupportedData, protocol.ErrCodeBadMessage, "binary frames are not coordinator messages", "")
		return false
	}
	m, err := protocol.DecodeCoordinatorMessage(data)
	if errors.Is(err, protocol.ErrMessageTooLarge) {
		cl.fail(websocket.CloseMessageTooBig, protocol.ErrCodeBadMessage, err.Error(), "")
		return false
	}
	if err != nil {
		cl.fail(websocket.CloseInvalidFramePayloadData, protocol.ErrCodeBadMessage, err.Error(), "")
		return false
	}
	if !cl.welcomed.Load() {
		return cl.hello(m)
	}
	cl.dispatch(m)
	return true
}

func (cl *client) hello(m protocol.CoordinatorMessage) bool {
	h, ok := m.(*protocol.Hello)
	if !ok {
		cl.fail(websocket.ClosePolicyViolation, protocol.ErrCodeHelloFirst, "the first message must be hello", "")
		return false
	}
	if h.Version != protocol.CoordinatorVersion {
		cl.fail(websocket.ClosePolicyViolation, protocol.ErrCodeVersion, "this server speaks coordinator protocol version 1", "")
		return false
	}
	var raw [32]byte
	rand.Read(raw[:])
	cl.id, cl.group = hex.EncodeToString(raw[:]), h.Group
	cl.detach = cl.c.bp.Attach(cl.id, cl.deliver)
	cl.c.mu.Lock()
	cl.c.peers++
	cl.c.mu.Unlock()
	cl.welcomed.Store(true)
	cl.ws.SetPongHandler(func(string) error {
		cl.ws.SetReadDeadline(time.Now().Add(cl.c.cfg.PongWait))
		return nil
	})
	cl.sendMessage(&protocol.Welcome{Version: protocol.CoordinatorVersion, Peer: cl.id,
		Loaded: cl.c.loaded.Load(), Limits: cl.c.limits(), ICEServers: cl.iceServers,
		Upload: cl.c.cfg.UploadPolicy})
	return true
}

// dispatch checks what only the connection knows (is the swarm known, is
// this connection in it) and hands the rest to the swarm state.
func (cl *client) dispatch(m protocol.CoordinatorMessage) {
	var swarm string
	switch b := m.(type) {
	case *protocol.Join:
		if !cl.knownSwarm(b.Swarm) {
			cl.sendError(protocol.ErrCodeUnknownSwarm, "no manifest with this id was built here", b.Swarm)
			return
		}
		cl.mu.Lock()
		_, in := cl.swarms[b.Swarm]
		full := len(cl.swarms) >= cl.c.cfg.MaxSwarmsPerConn
		if !in && !full {
			cl.swarms[b.Swarm] = struct{}{}
		}
		cl.mu.Unlock()
		switch {
		case in:
			cl.sendError(protocol.ErrCodeAlreadyJoined, "already in this swarm", b.Swarm)
		case full:
			cl.sendError(protocol.ErrCodeTooManySwarms, "too many swarms on one connection", b.Swarm)
		default:
			cl.c.bp.Publish(Message{Swarm: b.Swarm, From: cl.id, Net: cl.net, Group: cl.group, Body: b})
		}
		return
	case *protocol.Signal:
		if b.From != "" {
			cl.sendError(protocol.ErrCodeBadMessage, "a client's signal names to, not from", b.Swarm)
			return
		}
		swarm = b.Swarm
	case *protocol.Have:
		swarm = b.Swarm
	case *protocol.Stats:
		swarm = b.Swarm
	case *protocol.Report:
		swarm = b.Swarm
	case *protocol.Received:
		swarm = b.Swarm
	case *protocol.Leave:
		swarm = b.Swarm
	case *protocol.Connection:
		// Counted where the connection is, not where the swarm lives: a
		// statistic of this node's visitors, not swarm state.
		cl.mu.Lock()
		_, in := cl.swarms[b.Swarm]
		cl.mu.Unlock()
		if !in {
			cl.sendError(protocol.ErrCodeNotJoined, "not in this swarm", b.Swarm)
			return
		}
		cl.c.conns.add(b.Result, b.Path)
		return
	default:
		cl.sendError(protocol.ErrCodeUnexpected, "a client may not send "+m.CoordinatorType(), "")
		return
	}
	cl.mu.Lock()
	_, in := cl.swarms[swarm]
	if _, leave := m.(*protocol.Leave); leave {
		delete(cl.swarms, swarm)
	}
	cl.mu.Unlock()
	if !in {
		cl.sendError(protocol.ErrCodeNotJoined, "not in this swarm", swarm)
		return
	}
	cl.c.bp.Publish(Message{Swarm: swarm, From: cl.id, Net: cl.net, Group: cl.group, Body: m})
}

// knownSwarm applies KnownSiteSwarm (with this connection's site) or
// KnownSwarm.
func (cl *client) knownSwarm(id string) bool {
	if known := cl.c.cfg.KnownSiteSwarm; known != nil {
		return known(cl.site, id)
	}
	return cl.c.cfg.KnownSwarm(id)
}

// tokenBucket is a per-connection message rate limit, touched only by the
// read pump.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func (b *tokenBucket) take(now time.Time) bool {
	if b.last.IsZero() {
		b.tokens = b.burst
	} else {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// clipReason keeps a close reason within the 123 bytes a close frame holds.
func clipReason(s string) string { return clipText(s, 123) }

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}
