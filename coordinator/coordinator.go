// Package coordinator owns the swarms of P2PXHR: membership, neighbour
// selection ("who can help whom"), the signalling relay between introduced
// peers, have-updates, reports of bad peers, stats intake, and the
// WebSocket endpoint the browser client and the Go peer connect to.
//
// It speaks the messages of package protocol and must never import Caddy:
// the Caddy module mounts (*Coordinator).ServeHTTP at {prefix}ws. Swarm
// state sits behind the Backplane seam so that several nodes can later
// share swarms over NATS.
package coordinator

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// Coordinator is the swarm coordinator and its WebSocket endpoint.
type Coordinator struct {
	cfg      Config
	bp       Backplane
	table    *swarmTable
	upgrader websocket.Upgrader
	log      *zap.Logger
	loaded   atomic.Bool
	conns    connectionBook

	mu      sync.Mutex
	closed  bool
	clients map[*client]struct{}
	perAddr map[string]int // connections by AddressKey, reserved before upgrading
	peers   int            // clients past hello
	stop    chan struct{}
	wg      sync.WaitGroup
}

// New validates cfg, fills its defaults and returns a running Coordinator.
// Call Close to end its goroutines.
func New(cfg Config) (*Coordinator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Coordinator{
		cfg:     cfg,
		bp:      cfg.Backplane,
		log:     cfg.Logger,
		clients: make(map[*client]struct{}),
		perAddr: make(map[string]int),
		stop:    make(chan struct{}),
	}
	if c.bp == nil {
		c.bp = NewMemoryBackplane()
	}
	c.table = newSwarmTable(&c.cfg, c.bp.Publish)
	if cb, ok := c.bp.(clusterBackplane); ok {
		cb.bindTable(c.table)
	}
	c.bp.HandleSwarms(c.table.handle)
	c.upgrader = websocket.Upgrader{
		// Small read buffers and a shared write pool keep an idle
		// connection cheap: messages are small and infrequent.
		ReadBufferSize:  0,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		// ServeHTTP checks the origin itself, before upgrading, so that a
		// refusal is a plain 403.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	if cfg.Loaded != nil {
		c.loaded.Store(cfg.Loaded())
		c.wg.Add(1)
		go c.pollLoaded()
	}
	c.wg.Add(1)
	go c.tickLeases()
	return c, nil
}

// Close disconnects every client (close code 1001), stops every goroutine
// the coordinator started and waits for them. It is safe to call twice.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.stop)
	clients := make([]*client, 0, len(c.clients))
	for cl := range c.clients {
		clients = append(clients, cl)
	}
	c.mu.Unlock()
	for _, cl := range clients {
		cl.fail(websocket.CloseGoingAway, protocol.ErrCodeShutdown, "server shutting down", "")
	}
	c.wg.Wait()
	return c.bp.Close()
}

// Stats returns a snapshot of swarms, peers and the bytes peers reported.
func (c *Coordinator) Stats() Stats {
	s := c.table.snapshot()
	c.mu.Lock()
	s.Peers = c.peers
	c.mu.Unlock()
	s.Connections = c.conns.snapshot()
	if cb, ok := c.bp.(clusterBackplane); ok {
		s.Node, s.Nodes = cb.clusterStats()
		for _, n := range s.Nodes {
			s.ClusterSwarms += n.OwnedSwarms
			s.ClusterMembers += n.OwnedMembers
			s.ClusterPeers += n.Peers
		}
	}
	return s
}

// clusterBackplane is a Backplane that splits swarm state among nodes
// (NATSBackplane): it repairs the coordinator's swarm table when nodes
// come and go, and reports every node's counts.
type clusterBackplane interface {
	Backplane
	bindTable(*swarmTable)
	clusterStats() (node string, nodes map[string]NodeStats)
}

// Loaded reports the load hint clients were last told.
func (c *Coordinator) Loaded() bool { return c.loaded.Load() }

// SetLoaded sets the "server loaded" hint; when it changes every client is
// sent a load message, so clients lean on peers harder while it is true.
func (c *Coordinator) SetLoaded(loaded bool) {
	if c.loaded.Swap(loaded) == loaded {
		return
	}
	msg, err := protocol.EncodeCoordinatorMessage(&protocol.Load{Loaded: loaded})
	if err != nil {
		return
	}
	c.mu.Lock()
	clients := make([]*client, 0, len(c.clients))
	for cl := range c.clients {
		clients = append(clients, cl)
	}
	c.mu.Unlock()
	for _, cl := range clients {
		if cl.welcomed.Load() {
			cl.enqueue(msg)
		}
	}
}

func (c *Coordinator) pollLoaded() {
	defer c.wg.Done()
	tick := time.NewTicker(c.cfg.LoadPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
			c.SetLoaded(c.cfg.Loaded())
		}
	}
}

// tickLeases hands on the blocks of HTTP leases that ran out (assign.go).
func (c *Coordinator) tickLeases() {
	defer c.wg.Done()
	tick := time.NewTicker(leaseTick)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
			c.table.tickLeases()
		}
	}
}

// limits is what Welcome tells a client.
func (c *Coordinator) limits() protocol.CoordinatorLimits {
	return protocol.CoordinatorLimits{
		MaxMessageSize:    protocol.MaxCoordinatorMessageSize,
		MaxSwarms:         c.cfg.MaxSwarmsPerConn,
		MaxNeighbours:     c.cfg.MaxNeighbours,
		MaxHaveBlocks:     protocol.MaxHaveBlocks,
		MessagesPerSecond: c.cfg.MessagesPerSecond,
		MessageBurst:      c.cfg.MessageBurst,
	}
}
