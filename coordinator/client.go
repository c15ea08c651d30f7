package coordinator

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
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

// client is one WebSocket connection: a read pump (a goroutine for the
// connection's life, as gorilla needs) and a writer started only while
// there is something to write, joined by a bounded send queue. gorilla's
// chat keeps a write pump per connection; an idle peer would then hold two
// goroutine stacks, and most coordinator peers are idle most of the time.
type client struct {
	c        *Coordinator
	ws       *websocket.Conn
	site     string // Config.Site of the upgrade request
	addr     string // AddressKey of its client IP
	net      string
	readDone chan struct{} // closed when the read pump has finished
	// halves counts the two ends of the connection's life still to come
	// (the read pump's cleanup and the writer's close); the last calls
	// c.wg.Done.
	halves   atomic.Int32
	welcomed atomic.Bool

	// iceServers are told in the welcome; set before the pumps start.
	iceServers []protocol.ICEServer

	// Set by the read pump before welcomed is stored, read-only after.
	id     string
	group  string
	detach func()

	out  outbox
	idle *idleWaiter // nil: the read pump blocks in gorilla's reader

	mu     sync.Mutex
	swarms []string // at most MaxSwarmsPerConn
}

// outbox is a client's side of the writer: queued messages, whether a
// writer goroutine runs, and the close it must end with.
type outbox struct {
	mu      sync.Mutex
	queue   [][]byte // encoded messages, at most Config.SendQueue
	ping    bool     // a ping is due
	writing bool     // a writer goroutine is running
	closing bool     // shutdown was called: the writer closes once the queue is flushed
	code    int
	reason  string
	pinger  *time.Timer
}

func newClient(c *Coordinator, ws *websocket.Conn, site, addr, netKey string) *client {
	cl := &client{c: c, ws: ws, site: site, addr: addr, net: netKey, readDone: make(chan struct{})}
	cl.halves.Store(2)
	return cl
}

// start begins serving the connection: its read pump and its pings.
func (cl *client) start() {
	cl.out.mu.Lock()
	if !cl.out.closing {
		cl.out.pinger = time.AfterFunc(cl.c.cfg.PingPeriod, cl.pingDue)
	}
	cl.out.mu.Unlock()
	go cl.readPump()
}

// done marks one end of the connection's life finished.
func (cl *client) done() {
	if cl.halves.Add(-1) == 0 {
		cl.c.wg.Done()
	}
}

// shutdown asks the writer to close the connection with code, after what
// is queued (the error explaining the close).
func (cl *client) shutdown(code int, reason string) {
	o := &cl.out
	o.mu.Lock()
	if o.closing {
		o.mu.Unlock()
		return
	}
	o.closing, o.code, o.reason = true, code, clipReason(reason)
	if o.pinger != nil {
		o.pinger.Stop()
	}
	cl.wakeLocked()
}

// fail tells the client what was wrong, then closes with code.
func (cl *client) fail(code int, errCode, msg, swarm string) {
	cl.sendError(errCode, msg, swarm)
	cl.shutdown(code, msg)
}

// enqueue queues an encoded message without ever blocking: a client whose
// queue is full is too slow to keep up and is dropped.
func (cl *client) enqueue(b []byte) {
	o := &cl.out
	o.mu.Lock()
	if o.closing {
		o.mu.Unlock()
		return
	}
	if len(o.queue) >= cl.c.cfg.SendQueue {
		o.mu.Unlock()
		cl.shutdown(websocket.CloseTryAgainLater, protocol.ErrCodeSlowReader)
		return
	}
	o.queue = append(o.queue, b)
	cl.wakeLocked()
}

// pingDue runs on the ping timer: the writer sends a ping, and the timer
// is set again.
func (cl *client) pingDue() {
	o := &cl.out
	o.mu.Lock()
	if o.closing {
		o.mu.Unlock()
		return
	}
	o.ping = true
	o.pinger.Reset(cl.c.cfg.PingPeriod)
	cl.wakeLocked()
}

// wakeLocked starts a writer unless one runs, and unlocks out.mu.
func (cl *client) wakeLocked() {
	start := !cl.out.writing
	cl.out.writing = true
	cl.out.mu.Unlock()
	if start {
		go cl.write()
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
		cl.swarms = slices.DeleteFunc(cl.swarms, func(s string) bool { return s == e.Swarm })
		cl.mu.Unlock()
	}
	cl.sendMessage(m.Body)
}

// write is the writer: it sends what is queued and exits when the queue
// is empty, or closes the connection once shutdown was asked for. At most
// one runs per client (out.writing).
func (cl *client) write() {
	o := &cl.out
	wait := cl.c.cfg.WriteWait
	send := func(typ int, b []byte) bool {
		cl.ws.SetWriteDeadline(time.Now().Add(wait))
		return cl.ws.WriteMessage(typ, b) == nil
	}
	for {
		o.mu.Lock()
		batch, ping := o.queue, o.ping
		o.queue, o.ping = nil, false
		if len(batch) == 0 && !ping {
			if !o.closing {
				o.writing = false
				o.mu.Unlock()
				return
			}
			code, reason := o.code, o.reason
			o.mu.Unlock()
			cl.close(code, reason)
			return
		}
		o.mu.Unlock()
		for _, b := range batch {
			if !send(websocket.TextMessage, b) {
				cl.abort()
				return
			}
		}
		if ping && !send(websocket.PingMessage, nil) {
			cl.abort()
			return
		}
	}
}

// close ends the connection with a close frame, giving the client a moment
// to answer so that it reads our close code rather than a reset.
func (cl *client) close(code int, reason string) {
	if code != websocket.CloseAbnormalClosure {
		cl.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason),
			time.Now().Add(cl.c.cfg.WriteWait))
	}
	grace := time.NewTimer(closeGrace)
	select {
	case <-cl.readDone:
	case <-grace.C:
	}
	grace.Stop()
	cl.ws.Close()
	cl.done()
}

// abort drops a connection that could not be written to: the read pump
// then fails and cleans up.
func (cl *client) abort() {
	o := &cl.out
	o.mu.Lock()
	o.closing, o.queue = true, nil
	if o.pinger != nil {
		o.pinger.Stop()
	}
	o.mu.Unlock()
	cl.ws.Close()
	cl.done()
}

func (cl *client) readPump() {
	defer cl.cleanup()
	// The largest message is a join; DecodeCoordinatorMessage holds the
	// others to protocol.MaxCoordinatorMessageSize.
	cl.ws.SetReadLimit(protocol.MaxJoinMessageSize)
	cl.ws.SetReadDeadline(time.Now().Add(cl.c.cfg.HelloTimeout))
	bucket := tokenBucket{rate: float64(cl.c.cfg.MessagesPerSecond), burst: float64(cl.c.cfg.MessageBurst)}
	if cl.idle == nil {
		for cl.readOne(&bucket) {
		}
		return
	}
	// Park on the socket with a small stack; read and handle what came on
	// a goroutine that lives only as long as there is input (idle.go).
	more := make(chan bool, 1)
	for {
		cl.idle.wait()
		go func() {
			ok := cl.readOne(&bucket)
			for ok && cl.idle.buffered() {
				ok = cl.readOne(&bucket)
			}
			more <- ok
		}()
		if !<-more {
			return
		}
	}
}

// readOne reads and handles one message; false means the connection is
// closing.
func (cl *client) readOne(bucket *tokenBucket) bool {
	typ, data, err := cl.ws.ReadMessage()
	if err != nil {
		if errors.Is(err, websocket.ErrReadLimit) {
			// gorilla has sent 1009 already.
			cl.shutdown(websocket.CloseMessageTooBig, "message too large")
		} else {
			cl.shutdown(websocket.CloseNormalClosure, "")
		}
		return false
	}
	if !cl.receive(bucket, typ, data) {
		cl.linger()
		return false
	}
	if cl.welcomed.Load() {
		cl.ws.SetReadDeadline(time.Now().Add(cl.c.cfg.PongWait))
	}
	return true
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
	swarms := cl.swarms
	cl.swarms = nil
	cl.mu.Unlock()
	for _, s := range swarms {
		cl.c.bp.Publish(Message{Swarm: s, From: cl.id, Body: &protocol.Leave{Swarm: s}})
	}
	cl.c.unregister(cl, welcomed)
	close(cl.readDone)
	cl.done()
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
		Upload: cl.c.cfg.UploadPolicy, Assigns: true})
	cl.iceServers = nil // told; a connection keeps nothing it no longer needs
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
		in := slices.Contains(cl.swarms, b.Swarm)
		full := len(cl.swarms) >= cl.c.cfg.MaxSwarmsPerConn
		if !in && !full {
			cl.swarms = append(cl.swarms, b.Swarm)
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
	case *protocol.Fetch:
		swarm = b.Swarm
	case *protocol.Release:
		swarm = b.Swarm
	case *protocol.Connection:
		// Counted where the connection is, not where the swarm lives: a
		// statistic of this node's visitors, not swarm state.
		cl.mu.Lock()
		in := slices.Contains(cl.swarms, b.Swarm)
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
	in := slices.Contains(cl.swarms, swarm)
	if _, leave := m.(*protocol.Leave); leave {
		cl.swarms = slices.DeleteFunc(cl.swarms, func(s string) bool { return s == swarm })
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
