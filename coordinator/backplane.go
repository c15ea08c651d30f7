package coordinator

import (
	"sync"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// Message is one cross-peer action on the Backplane. Every action that
// involves more than one peer — join, introduce, relay a signal, have,
// leave, report, peer-left — is one Message, so a networked backplane
// (NATS) only has to carry these structs, e.g. as JSON with Body encoded by
// protocol.EncodeCoordinatorMessage.
type Message struct {
	// To addresses a peer's connection by peer id. Empty means the message
	// is for the swarm state of Swarm.
	To string
	// Swarm is the swarm the action belongs to.
	Swarm string
	// From is the peer whose connection caused a swarm-bound action.
	From string
	// Net is From's network key (IPv4 /24 or IPv6 /48), sent with a join
	// so neighbour choice can prefer the same network.
	Net string
	// Group is From's A/B group, for stats.
	Group string
	// Node is the node holding a connection: From's on a swarm-bound
	// message, To's on a delivery. A networked backplane sets it and routes
	// by it; in a single process it stays "".
	Node string
	// Body is the protocol message. Toward the swarm state: Join, Have,
	// Leave, Stats, Report, or Signal with To set. Toward a peer:
	// Neighbours (an introduction), Signal with From set (a relay),
	// PeerLeft or Error.
	Body protocol.CoordinatorMessage
}

// Backplane routes Messages between the connections a process holds and
// swarm state, which may live in this process or another. Implementations
// must never block on one slow peer.
type Backplane interface {
	// Publish routes m: to the swarm handler when m.To is empty, else to
	// the connection of peer m.To, wherever it is. Unknown peers are
	// silently skipped: they have just gone.
	Publish(m Message)
	// Attach registers the local connection of a peer. Messages addressed
	// to it are passed to deliver, which must not block. The returned
	// function detaches it.
	Attach(peer string, deliver func(Message)) (detach func())
	// HandleSwarms sets the function that applies swarm-bound messages.
	// It is called once, before the first Publish; the handler publishes
	// its own deliveries back through Publish.
	HandleSwarms(handle func(Message))
	// Close releases the backplane's resources.
	Close() error
}

// MemoryBackplane is the Backplane for one process: swarm-bound messages
// are handled synchronously in the caller's goroutine and deliveries are
// direct calls.
type MemoryBackplane struct {
	handle func(Message)
	mu     sync.RWMutex
	peers  map[string]func(Message)
}

// NewMemoryBackplane returns an empty in-process backplane.
func NewMemoryBackplane() *MemoryBackplane {
	return &MemoryBackplane{peers: make(map[string]func(Message))}
}

// Publish implements Backplane.
func (b *MemoryBackplane) Publish(m Message) {
	if m.To == "" {
		if b.handle != nil {
			b.handle(m)
		}
		return
	}
	b.mu.RLock()
	deliver := b.peers[m.To]
	b.mu.RUnlock()
	if deliver != nil {
		deliver(m)
	}
}

// Attach implements Backplane.
func (b *MemoryBackplane) Attach(peer string, deliver func(Message)) func() {
	b.mu.Lock()
	b.peers[peer] = deliver
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		delete(b.peers, peer)
		b.mu.Unlock()
	}
}

// HandleSwarms implements Backplane.
func (b *MemoryBackplane) HandleSwarms(handle func(Message)) { b.handle = handle }

// Close implements Backplane.
func (b *MemoryBackplane) Close() error { return nil }

var _ Backplane = (*MemoryBackplane)(nil)
