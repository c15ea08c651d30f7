package coordinator

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// NATSOptions configure a NATSBackplane. URLs is required; zero fields
// take the defaults named in their comments.
type NATSOptions struct {
	// URLs of the NATS servers, e.g. nats://10.0.0.5:4222 or tls://….
	URLs []string
	// Cluster names the set of nodes that share swarms; subjects start
	// with p2pxhr.<Cluster>. Letters, digits, '_' and '-'. Default
	// "default". Nodes serving different sites use different clusters.
	Cluster string
	// NodeID names this node in subjects and stats. Letters, digits, '_'
	// and '-', at most 64. Default: 16 random hex digits.
	NodeID string

	// Authentication, as NATS users expect: a .creds file (JWT and NKey),
	// or a user and password, or a token.
	CredentialsFile string
	User, Password  string
	Token           string
	// TLS: a CA bundle to verify the servers with, and a client
	// certificate and key for mutual TLS.
	TLSCAFile, TLSCertFile, TLSKeyFile string

	// HeartbeatInterval is how often a node announces itself. Default 1s.
	HeartbeatInterval time.Duration
	// HeartbeatTTL is how long a silent node is kept: past it, its peers
	// are dropped from every swarm. Default 3 × HeartbeatInterval.
	HeartbeatTTL time.Duration
	// ConnectTimeout bounds the first connection. Default 5s.
	ConnectTimeout time.Duration
	// ReconnectWait is the pause between reconnection attempts, which go
	// on for ever. Default 1s.
	ReconnectWait time.Duration

	// Logger receives connection events. Default zap.NewNop().
	Logger *zap.Logger
}

var subjectToken = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (o NATSOptions) withDefaults() (NATSOptions, error) {
	if len(o.URLs) == 0 {
		return o, errors.New("coordinator: NATS backplane needs at least one server URL")
	}
	if o.Cluster == "" {
		o.Cluster = "default"
	}
	if o.NodeID == "" {
		o.NodeID = randomHex(8)
	}
	if !subjectToken.MatchString(o.Cluster) || !subjectToken.MatchString(o.NodeID) {
		return o, fmt.Errorf("coordinator: NATS cluster %q and node id %q must be 1-64 of [A-Za-z0-9_-]", o.Cluster, o.NodeID)
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return o, errors.New("coordinator: NATS TLS client certificate and key go together")
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = time.Second
	}
	if o.HeartbeatTTL <= 0 {
		o.HeartbeatTTL = 3 * o.HeartbeatInterval
	}
	if o.HeartbeatTTL <= o.HeartbeatInterval {
		return o, errors.New("coordinator: NATS HeartbeatTTL must be longer than HeartbeatInterval")
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o, nil
}

// NATSBackplane shares swarms among the nodes of a cluster over NATS.
// Each swarm's state lives on one node, its owner, chosen by rendezvous
// hashing of the swarm id over the live nodes; peers' messages go to the
// owner and deliveries to the node holding the target's connection.
// Subjects, payloads and timing: docs/PROTOCOL.md §5.
type NATSBackplane struct {
	opts   NATSOptions
	log    *zap.Logger
	nc     *nats.Conn
	node   string
	boot   string
	prefix string // "p2pxhr.<cluster>."

	handle func(Message)
	table  *swarmTable // set by New before HandleSwarms; nil: no cluster repair
	ledger *ledger

	peersMu sync.RWMutex
	peers   map[string]func(Message)

	// route orders every routing decision with changes of the node set,
	// so a member's messages and its state reach owners in order.
	route sync.Mutex
	view  nodeView

	nodesMu sync.Mutex
	nodes   map[string]*nodeInfo // other nodes, by last heartbeat

	connected atomic.Bool
	started   atomic.Bool
	closed    atomic.Bool
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	subs      []*nats.Subscription
}

// NewNATSBackplane connects to NATS and returns a backplane for one
// Coordinator (Config.Backplane). It fails with a clear error when no
// server can be reached; once connected it reconnects for ever, serving
// its own peers alone while NATS is away.
func NewNATSBackplane(opts NATSOptions) (*NATSBackplane, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &NATSBackplane{opts: opts, log: opts.Logger.With(zap.String("node", opts.NodeID)), node: opts.NodeID,
		boot: randomHex(8), prefix: "p2pxhr." + opts.Cluster + ".", ledger: newLedger(),
		peers: make(map[string]func(Message)), nodes: make(map[string]*nodeInfo), stop: make(chan struct{})}
	b.view = newNodeView([]string{b.node})
	nopts := []nats.Option{
		nats.Name("p2pxhr " + opts.Cluster + "/" + opts.NodeID),
		nats.Timeout(opts.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(opts.ReconnectWait),
		nats.DisconnectErrHandler(b.onDisconnect),
		nats.ReconnectHandler(b.onReconnect),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			b.log.Warn("NATS backplane error", zap.Error(err))
		}),
	}
	if opts.CredentialsFile != "" {
		nopts = append(nopts, nats.UserCredentials(opts.CredentialsFile))
	}
	if opts.User != "" || opts.Password != "" {
		nopts = append(nopts, nats.UserInfo(opts.User, opts.Password))
	}
	if opts.Token != "" {
		nopts = append(nopts, nats.Token(opts.Token))
	}
	if opts.TLSCAFile != "" {
		nopts = append(nopts, nats.RootCAs(opts.TLSCAFile))
	}
	if opts.TLSCertFile != "" {
		nopts = append(nopts, nats.ClientCert(opts.TLSCertFile, opts.TLSKeyFile))
	}
	nc, err := nats.Connect(strings.Join(opts.URLs, ","), nopts...)
	if err != nil {
		return nil, fmt.Errorf("coordinator: cannot reach NATS at %s: %w", strings.Join(opts.URLs, ", "), err)
	}
	b.nc = nc
	b.connected.Store(true)
	return b, nil
}

// NodeID returns this node's id.
func (b *NATSBackplane) NodeID() string { return b.node }

func (b *NATSBackplane) inbox(node string) string { return b.prefix + "node." + node }
func (b *NATSBackplane) hbSubject() string        { return b.prefix + "hb" }

// bindTable gives the backplane the coordinator's swarm state, which it
// repairs when the set of nodes changes.
func (b *NATSBackplane) bindTable(t *swarmTable) { b.table = t }

// HandleSwarms implements Backplane. It subscribes and starts announcing
// the node: only now can messages for the swarm state be applied.
func (b *NATSBackplane) HandleSwarms(handle func(Message)) {
	b.handle = handle
	if !b.started.CompareAndSwap(false, true) {
		return
	}
	for subj, cb := range map[string]nats.MsgHandler{b.inbox(b.node): b.onInbox, b.hbSubject(): b.onHeartbeat} {
		sub, err := b.nc.Subscribe(subj, cb)
		if err != nil {
			b.log.Error("NATS backplane cannot subscribe", zap.String("subject", subj), zap.Error(err))
			continue
		}
		b.subs = append(b.subs, sub)
	}
	// The subscriptions must be in place on the server before the hello
	// asks the others to send this node their states.
	if err := b.nc.FlushTimeout(b.opts.ConnectTimeout); err != nil {
		b.log.Warn("NATS backplane flush", zap.Error(err))
	}
	b.wg.Add(1)
	go b.run()
}

// Publish implements Backplane: swarm-bound messages go to the swarm's
// owner, deliveries to the node holding the peer's connection.
func (b *NATSBackplane) Publish(m Message) {
	if m.To != "" {
		b.deliver(m)
		return
	}
	m.Node = b.node
	b.route.Lock()
	defer b.route.Unlock()
	b.ledger.sent(m)
	if owner := b.view.owner(m.Swarm); owner != b.node {
		b.send(owner, wireSwarm, m, 0)
		return
	}
	if b.handle != nil {
		b.handle(m)
	}
}

// deliver passes m to its peer here, or sends it to the peer's node.
func (b *NATSBackplane) deliver(m Message) {
	if m.Node != "" && m.Node != b.node {
		b.send(m.Node, wirePeer, m, 0)
		return
	}
	b.ledger.delivered(m)
	b.peersMu.RLock()
	d := b.peers[m.To]
	b.peersMu.RUnlock()
	if d != nil {
		d(m)
	}
}

// send publishes one message to a node's inbox. While NATS is away the
// message is dropped rather than buffered: the node set has shrunk to
// this node, and the others rebuild from states on reconnection.
func (b *NATSBackplane) send(node, kind string, m Message, hops int) {
	if !b.connected.Load() {
		return
	}
	data, err := encodeWire(kind, m, hops)
	if err != nil {
		b.log.Error("NATS backplane encoding", zap.Error(err))
		return
	}
	b.publish(b.inbox(node), data)
}

func (b *NATSBackplane) publish(subject string, data []byte) {
	if err := b.nc.Publish(subject, data); err != nil {
		b.log.Debug("NATS backplane publish", zap.String("subject", subject), zap.Error(err))
	}
}

// onInbox applies what other nodes send this one.
func (b *NATSBackplane) onInbox(msg *nats.Msg) {

	w, m, err := decodeWire(msg.Data)
	if err != nil {
		b.log.Warn("NATS backplane: bad message", zap.Error(err))
		return
	}
	if w.Kind == wirePeer {
		m.Node = b.node
		b.deliver(m)
		return
	}
	b.route.Lock()
	defer b.route.Unlock()
	// Sent here by a node whose view of the node set differs from ours:
	// pass it on once to the owner we see, then handle it whatever.
	if owner := b.view.owner(w.Swarm); owner != b.node && w.Hops == 0 && b.connected.Load() {
		if w.Kind == wireState {
			b.sendState(owner, w.Swarm, w.Node, w.State, 1)
		} else {
			b.send(owner, wireSwarm, m, 1)
		}
		return
	}
	switch {
	case w.Kind == wireState && b.table != nil:
		b.table.resync(w.Swarm, w.Node, w.State, time.Now().Add(b.grace()))
	case w.Kind == wireSwarm && b.handle != nil:
		b.handle(m)
	}
}

// sendState gives a member's state to a swarm's owner, here or remote.
func (b *NATSBackplane) sendState(owner, swarm, node string, st *memberState, hops int) {
	if owner == b.node {
		if b.table != nil {
			b.table.resync(swarm, node, st, time.Now().Add(b.grace()))
		}
		return
	}
	if !b.connected.Load() {
		return
	}
	data, err := encodeState(swarm, node, st, hops)
	if err != nil {
		b.log.Error("NATS backplane encoding", zap.Error(err))
		return
	}
	b.publish(b.inbox(owner), data)
}

// Attach implements Backplane.
func (b *NATSBackplane) Attach(peer string, deliver func(Message)) func() {
	b.peersMu.Lock()
	b.peers[peer] = deliver
	b.peersMu.Unlock()
	return func() {
		b.peersMu.Lock()
		delete(b.peers, peer)
		b.peersMu.Unlock()
	}
}

// Close implements Backplane: it stops announcing the node, tells the
// others it is gone (so they drop its peers at once), and disconnects.
func (b *NATSBackplane) Close() error {
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		close(b.stop)
		b.wg.Wait()
		if b.started.Load() && b.connected.Load() {
			b.heartbeat(false, true)
		}
		for _, s := range b.subs {
			s.Unsubscribe()
		}
		b.nc.FlushTimeout(time.Second)
		b.nc.Close()
	})
	return nil
}

func (b *NATSBackplane) onDisconnect(_ *nats.Conn, err error) {
	if b.closed.Load() {
		return
	}
	b.log.Warn("NATS backplane disconnected: serving this node's peers alone", zap.Error(err))
	b.connected.Store(false)
	b.refreshView()
}

func (b *NATSBackplane) onReconnect(nc *nats.Conn) {
	if b.closed.Load() {
		return
	}
	b.log.Info("NATS backplane reconnected", zap.String("server", nc.ConnectedUrlRedacted()))
	b.connected.Store(true)
	if b.started.Load() {
		b.heartbeat(true, false)
	}
	b.refreshView()
}

func randomHex(n int) string {
	raw := make([]byte, n)
	rand.Read(raw)
	return hex.EncodeToString(raw)
}

var _ Backplane = (*NATSBackplane)(nil)
