package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// CoordOptions configure a CoordClient; zero fields take defaults.
type CoordOptions struct {
	// Prefix is the module's route prefix (DefaultPrefix); the coordinator
	// is at {origin}{Prefix}ws.
	Prefix string
	// Group is the A/B group named in hello, if any.
	Group string
	// Dialer dials the WebSocket (default: a 10s handshake timeout).
	Dialer *websocket.Dialer
	// NoReconnect stops after the first connection ends or fails; by
	// default the client reconnects with exponential back-off and joins
	// its swarms again.
	NoReconnect bool
	// MinBackoff and MaxBackoff bound the wait between attempts
	// (defaults 500ms and 30s; each wait gets up to 50% random jitter).
	MinBackoff, MaxBackoff time.Duration
	// HaveDelay is how long newly verified blocks are batched before one
	// have message carries them (default 250ms).
	HaveDelay time.Duration
	// StatsInterval is how often changed totals are sent (default 5s).
	StatsInterval time.Duration
	// PingPeriod is how often we ping; PongWait is how long the connection
	// may stay silent (no message, ping or pong) before it counts as dead
	// (defaults 30s and 75s: the server pings every 54s).
	PingPeriod, PongWait time.Duration
	// QueueSize bounds the outgoing message queue (default 256); when it
	// is full a message is dropped and Send reports it.
	QueueSize int
	// Logf, if set, receives connection events and server errors.
	Logf func(format string, args ...any)
	// HTTPClient fetches a manifest again when the coordinator does not
	// know a swarm (default http.DefaultClient).
	HTTPClient *http.Client
}

func (o CoordOptions) withDefaults() CoordOptions {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Dialer == nil {
		o.Dialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second, Proxy: http.ProxyFromEnvironment}
	}
	def(&o.MinBackoff, 500*time.Millisecond)
	def(&o.MaxBackoff, 30*time.Second)
	def(&o.HaveDelay, 250*time.Millisecond)
	def(&o.StatsInterval, 5*time.Second)
	def(&o.PingPeriod, 30*time.Second)
	def(&o.PongWait, 75*time.Second)
	if o.PongWait <= o.PingPeriod {
		o.PongWait = o.PingPeriod * 5 / 2
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	return o
}

// ErrNotConnected is returned by Send while no coordinator session is up.
var ErrNotConnected = errors.New("peer: not connected to the coordinator")

// CoordClient is the Signaller over the coordinator WebSocket of a P2PXHR
// site (docs/PROTOCOL.md §3). It connects in the background and keeps
// reconnecting, so a Client using it never waits for, nor fails because
// of, signalling: while it is down, downloads go on over HTTP. Swarms
// joined while disconnected are joined on the next connection with the
// blocks held by then.
type CoordClient struct {
	opts   CoordOptions
	wsURL  string
	origin string

	neighbours chan Introduction
	signals    chan Signal
	loaded     chan bool
	assigns    chan Assignment
	flushNow   chan struct{}
	ready      chan struct{} // closed at the first welcome
	readyOnce  sync.Once

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	swarms   map[string]*coordSwarm
	sess     *coordSession // nil while disconnected
	welcome  protocol.Welcome
	lastErr  error
	isLoaded bool
	closed   bool
}

// coordSwarm is what the client must remember of a swarm to (re)join it
// and to report on it.
type coordSwarm struct {
	url     string
	have    protocol.Bitfield
	blocks  int
	pending []int // verified since the join of this session, not yet sent
	joined  bool  // joined in the current session and not refused
	// seed: it joined holding every block, so it will not download: the
	// coordinator treats it as a seeder (a Go peer's Seed).
	seed bool
	// want is the last Fetch.Want: told again to every new session.
	want int
	// Stats are cumulative since join at the coordinator; after a
	// reconnect the new membership counts from base, the totals last sent.
	latest, sent, base SwarmStats
	// rejoin.go: attempts after unknown-swarm in rejoinSess, and whether
	// one is under way.
	rejoinSess *coordSession
	rejoins    int
	rejoining  bool
}

// NewCoordClient returns a client for the coordinator of site (an http or
// https URL; only its scheme and host are used) and starts connecting.
// It fails only for a URL it cannot use. Close releases it.
func NewCoordClient(site string, opts CoordOptions) (*CoordClient, error) {
	u, err := url.Parse(site)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("peer: %q is not an http(s) site URL", site)
	}
	opts = opts.withDefaults()
	ws := url.URL{Scheme: "ws", Host: u.Host, Path: opts.Prefix + "ws"}
	if u.Scheme == "https" {
		ws.Scheme = "wss"
	}
	c := &CoordClient{
		opts:       opts,
		wsURL:      ws.String(),
		origin:     u.Scheme + "://" + u.Host,
		neighbours: make(chan Introduction, 256),
		signals:    make(chan Signal, 256),
		loaded:     make(chan bool, 1),
		assigns:    make(chan Assignment, 256),
		flushNow:   make(chan struct{}, 1),
		ready:      make(chan struct{}),
		swarms:     map[string]*coordSwarm{},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go c.run()
	return c, nil
}

// DialCoordinator is NewCoordClient that also waits for the first welcome;
// it fails, closing the client, if ctx ends first.
func DialCoordinator(ctx context.Context, site string, opts CoordOptions) (*CoordClient, error) {
	c, err := NewCoordClient(site, opts)
	if err != nil {
		return nil, err
	}
	if err := c.WaitConnected(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// WaitConnected waits until a session is up (welcome received). If ctx
// ends first the error includes the last connection error.
func (c *CoordClient) WaitConnected(ctx context.Context) error {
	for {
		c.mu.Lock()
		up, closed, last := c.sess != nil, c.closed, c.lastErr
		c.mu.Unlock()
		switch {
		case up:
			return nil
		case closed:
			return errors.New("peer: coordinator client closed")
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("peer: coordinator %s: %w (%w)", c.wsURL, last, ctx.Err())
			}
			return ctx.Err()
		case <-c.ready:
			// The first welcome; later sessions are polled below.
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ID returns this peer's id in the current session ("" while disconnected).
func (c *CoordClient) ID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return ""
	}
	return c.welcome.Peer
}

// Welcome returns the last welcome received and whether a session is up.
func (c *CoordClient) Welcome() (protocol.Welcome, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.welcome, c.sess != nil
}

// Join implements Signaller. It records the swarm and joins it now if
// connected, otherwise on the next connection; it does not wait for the
// coordinator's answer, which arrives as Neighbours.
func (c *CoordClient) Join(ctx context.Context, swarm, manifestURL string, have []bool) error {
	bf := protocol.NewBitfield(len(have))
	for i, ok := range have {
		if ok {
			bf.Set(i)
		}
	}
	u, err := url.Parse(manifestURL)
	if err == nil {
		// The coordinator wants the resource's URL, not the manifest's.
		if r := u.Query().Get("url"); r != "" {
			manifestURL = r
		}
	}
	if len(manifestURL) > protocol.MaxURLSize {
		manifestURL = ""
	}
	s := &coordSwarm{url: manifestURL, have: bf, blocks: len(have), seed: bf.Count() == len(have)}
	// The message gets its own copy: Have keeps setting bits in s.have
	// while the write pump encodes the join.
	join := &protocol.Join{Swarm: swarm, URL: s.url, Blocks: s.blocks, Bitfield: slices.Clone(bf), Seed: s.seed}
	if err := join.Validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("peer: coordinator client closed")
	}
	if c.swarms[swarm] != nil {
		return fmt.Errorf("%w %s", ErrAlreadyInSwarm, swarm)
	}
	c.swarms[swarm] = s
	if c.sess == nil {
		return nil
	}
	s.joined = c.sess.enqueue(join)
	if !s.joined {
		return errors.New("peer: coordinator queue full")
	}
	return nil
}

// Neighbours implements Signaller.
func (c *CoordClient) Neighbours() <-chan Introduction { return c.neighbours }

// Signals implements Signaller.
func (c *CoordClient) Signals() <-chan Signal { return c.signals }

// Loaded implements Signaller. The welcome's flag comes first; a lost
// connection reads as "not loaded", since HTTP is then all there is.
func (c *CoordClient) Loaded() <-chan bool { return c.loaded }

// Send implements Signaller. Candidates are sent as the coordinator
// protocol has them: the candidate line with its mid.
func (c *CoordClient) Send(ctx context.Context, to string, sig Signal) error {
	m := &protocol.Signal{Swarm: sig.Swarm, To: to, Kind: sig.Kind, Data: sig.Data}
	if sig.Kind == SignalCandidate && len(sig.Data) > 0 && sig.Data[0] == '{' {
		var init webrtc.ICECandidateInit
		if err := json.Unmarshal([]byte(sig.Data), &init); err != nil {
			return fmt.Errorf("peer: candidate: %w", err)
		}
		m.Data = init.Candidate
		if init.SDPMid != nil {
			m.Mid = *init.SDPMid
		}
	}
	if err := m.Validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return ErrNotConnected
	}
	if !c.sess.enqueue(m) {
		return errors.New("peer: coordinator queue full")
	}
	return nil
}

// Have implements Signaller: blocks are batched and sent every HaveDelay.
func (c *CoordClient) Have(swarm string, blocks []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.swarms[swarm]
	if s == nil {
		return
	}
	for _, i := range blocks {
		if i < 0 || i >= s.blocks || s.have.Has(i) {
			continue
		}
		s.have.Set(i)
		if s.joined {
			s.pending = append(s.pending, i)
		}
	}
}

// ICEServers implements ICEServerSource: the ICE servers of the last
// welcome, in the order the site gave them.
func (c *CoordClient) ICEServers() []webrtc.ICEServer {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]webrtc.ICEServer, 0, len(c.welcome.ICEServers))
	for _, s := range c.welcome.ICEServers {
		srv := webrtc.ICEServer{URLs: append([]string(nil), s.URLs...), Username: s.Username}
		if s.Credential != "" {
			srv.Credential = s.Credential
		}
		out = append(out, srv)
	}
	return out
}

// ReportConnection implements ConnectionReporter, for a server whose
// welcome announced it takes connection reports.
func (c *CoordClient) ReportConnection(o ConnectionOutcome) {
	c.mu.Lock()
	accepts := c.welcome.ICEServers != nil
	c.mu.Unlock()
	if !accepts {
		return
	}
	m := &protocol.Connection{Swarm: o.Swarm, Peer: o.Peer, Result: protocol.ConnectionFailed}
	if o.Connected {
		m.Result, m.Path = protocol.ConnectionConnected, o.Path
	}
	c.sendIfJoined(o.Swarm, m)
}

// Report implements Signaller.
func (c *CoordClient) Report(swarm, peer, reason string) {
	c.sendIfJoined(swarm, &protocol.Report{Swarm: swarm, Peer: peer, Reason: reason})
}

// Received implements Signaller.
func (c *CoordClient) Received(swarm, peer string) {
	c.sendIfJoined(swarm, &protocol.Received{Swarm: swarm, Peer: peer})
}

// Stats implements Signaller: the latest totals are sent every
// StatsInterval when they changed, and on Leave.
func (c *CoordClient) Stats(swarm string, st SwarmStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.swarms[swarm]; s != nil {
		// Totals never decrease, whatever the caller passes.
		s.latest.FromHTTP = max(s.latest.FromHTTP, st.FromHTTP)
		s.latest.FromPeers = max(s.latest.FromPeers, st.FromPeers)
		s.latest.Uploaded = max(s.latest.Uploaded, st.Uploaded)
	}
}

// Leave implements Signaller: pending haves and the final totals go out
// before the leave.
func (c *CoordClient) Leave(swarm string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.swarms[swarm]
	if s == nil {
		return
	}
	delete(c.swarms, swarm)
	if c.sess == nil || !s.joined {
		return
	}
	for _, m := range c.flushLocked(swarm, s, true) {
		c.sess.enqueue(m)
	}
	c.sess.enqueue(&protocol.Leave{Swarm: swarm})
}

func (c *CoordClient) sendIfJoined(swarm string, m protocol.CoordinatorMessage) {
	if m.Validate() != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.swarms[swarm]; s != nil && s.joined && c.sess != nil {
		c.sess.enqueue(m)
	}
}

// flushLocked returns the have messages due for s, and its stats if
// withStats and they changed, and marks them sent. c.mu is held.
func (c *CoordClient) flushLocked(id string, s *coordSwarm, withStats bool) []protocol.CoordinatorMessage {
	var out []protocol.CoordinatorMessage
	per := protocol.MaxHaveBlocks
	if l := c.welcome.Limits.MaxHaveBlocks; l > 0 && l < per {
		per = l
	}
	for len(s.pending) > 0 {
		n := min(per, len(s.pending))
		out = append(out, &protocol.Have{Swarm: id, Blocks: append([]int(nil), s.pending[:n]...)})
		s.pending = s.pending[n:]
	}
	s.pending = nil
	if withStats && s.latest != s.sent {
		st := &protocol.Stats{Swarm: id,
			BytesFromHTTP:  s.latest.FromHTTP - s.base.FromHTTP,
			BytesFromPeers: s.latest.FromPeers - s.base.FromPeers,
			BytesUploaded:  s.latest.Uploaded - s.base.Uploaded}
		if st.Validate() == nil {
			out = append(out, st)
			s.sent = s.latest
		}
	}
	return out
}

// Close ends the session and every goroutine, then closes the channels.
func (c *CoordClient) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	sess := c.sess
	c.mu.Unlock()
	// The session goes first, so its last stats and leaves are sent; the
	// cancel then ends a dial or back-off in progress.
	if sess != nil {
		sess.finish()
	}
	c.cancel()
	c.wg.Wait()
	close(c.neighbours)
	close(c.signals)
	close(c.loaded)
	close(c.assigns)
	return nil
}

// Assigning implements HTTPAssigner.
func (c *CoordClient) Assigning(swarm string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.swarms[swarm]
	return c.sess != nil && c.welcome.Assigns && s != nil && s.joined
}

// Fetch implements HTTPAssigner.
func (c *CoordClient) Fetch(swarm string, want int, claim []int) {
	c.mu.Lock()
	if s := c.swarms[swarm]; s != nil {
		s.want = want
	}
	c.mu.Unlock()
	for len(claim) > protocol.MaxFetchBlocks {
		c.sendIfJoined(swarm, &protocol.Fetch{Swarm: swarm, Want: want, Claim: claim[:protocol.MaxFetchBlocks]})
		claim = claim[protocol.MaxFetchBlocks:]
	}
	c.sendIfJoined(swarm, &protocol.Fetch{Swarm: swarm, Want: want, Claim: claim})
}

// Release implements HTTPAssigner.
func (c *CoordClient) Release(swarm string, blocks []int) {
	for len(blocks) > 0 {
		n := min(len(blocks), protocol.MaxFetchBlocks)
		c.sendIfJoined(swarm, &protocol.Release{Swarm: swarm, Blocks: blocks[:n]})
		blocks = blocks[n:]
	}
}

// Assignments implements HTTPAssigner.
func (c *CoordClient) Assignments() <-chan Assignment { return c.assigns }

// FlushHaves implements HTTPAssigner.
func (c *CoordClient) FlushHaves() {
	select {
	case c.flushNow <- struct{}{}:
	default:
	}
}

var (
	_ Signaller          = (*CoordClient)(nil)
	_ ICEServerSource    = (*CoordClient)(nil)
	_ ConnectionReporter = (*CoordClient)(nil)
)
