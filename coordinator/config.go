package coordinator

import (
	"errors"
	"net/http"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// DefaultMaxConnectionsPerAddress is Config.MaxConnectionsPerAddress's
// default.
const DefaultMaxConnectionsPerAddress = 50

// Config configures a Coordinator. Zero fields take the defaults named in
// their comments; KnownSwarm or KnownSiteSwarm is required.
type Config struct {
	// KnownSwarm reports whether a swarm id is the id of a manifest the
	// server has built. Joins for any other id are refused, so the
	// coordinator never becomes a free signalling relay.
	KnownSwarm func(id string) bool

	// KnownSiteSwarm, if set, is asked instead of KnownSwarm, with the
	// Site of the connection's upgrade request: a coordinator serving
	// several sites opens a swarm on a connection only if that site built
	// a manifest with this id.
	KnownSiteSwarm func(site, id string) bool

	// Site names the site (scheme://host) a request was served for; see
	// KnownSiteSwarm. Default: RequestSite.
	Site func(r *http.Request) string

	// SwarmBlocks, if set, gives the block count of a known swarm. Without
	// it the first joiner's count is taken and later joiners must agree.
	SwarmBlocks func(id string) (blocks int, ok bool)

	// SwarmSize, if set, gives the resource size of a known swarm: a
	// member's stats count at most that many bytes downloaded (and
	// maxUploadCopies times that uploaded). Without it the bound is the
	// block count times protocol.MaxBlockSize. It also gives the bytes
	// seeders announce holding (Stats.Seeding).
	SwarmSize func(id string) (size int64, ok bool)

	// UploadPolicy is the site's policy on visitors' uploads, told in every
	// welcome: protocol.UploadAlways (default), UploadConsent or
	// UploadNever. Browser clients obey it; the coordinator does not
	// refuse seeders under it (an operator's own Go seeders serve under
	// "never").
	UploadPolicy string

	// MaxNeighbours (K) is how many neighbours the coordinator keeps a peer
	// supplied with. Default 6.
	MaxNeighbours int
	// MaxDegree is how many introductions a peer may hold before it is no
	// longer suggested to others, so one seeder is not swamped.
	// Default 2*MaxNeighbours.
	MaxDegree int
	// MaxPeersPerSwarm caps a swarm's membership. Default 50,000.
	MaxPeersPerSwarm int
	// MaxSwarmsPerConn caps the swarms one connection may be in. Default 8.
	MaxSwarmsPerConn int
	// MaxConnections caps open connections; over it ServeHTTP answers 503.
	// Default 100,000.
	MaxConnections int
	// MaxConnectionsPerAddress caps the connections of one client address
	// (ClientIP: an IPv4 address or an IPv6 /64, AddressKey); over it
	// ServeHTTP answers 429. Default DefaultMaxConnectionsPerAddress; a
	// negative value turns the cap off. Behind a proxy, ClientIP must see
	// through it, or every visitor shares the proxy's address.
	MaxConnectionsPerAddress int
	// BanReporters is how many distinct peers must report a peer before it
	// is no longer introduced to anyone in that swarm. Default 2. A single
	// report always stops the reporter and the reported peer from being
	// introduced to each other again.
	BanReporters int

	// AllowedOrigins widens the same-origin check: Origin values (scheme
	// and host, e.g. "https://www.example.com") also accepted. "*" accepts
	// any origin. By default only an Origin whose host equals the request's
	// Host is accepted (or no Origin at all, as non-browser peers send).
	AllowedOrigins []string

	// ClientIP returns the client's address, used for network locality.
	// Default: the IP of r.RemoteAddr. Behind a proxy, pass the real one.
	ClientIP func(r *http.Request) netip.Addr

	// ICEServers, if set, gives the STUN/TURN servers a client is told in
	// its welcome; it is called once per connection with the upgrade
	// request, so it can name the host the page came from and make TURN
	// credentials for this visitor. Default: none.
	ICEServers func(r *http.Request) []protocol.ICEServer

	// Loaded, if set, is polled every LoadPollInterval; when its answer
	// changes every client is sent a load message. SetLoaded does the same
	// by push.
	Loaded func() bool
	// LoadPollInterval defaults to one second.
	LoadPollInterval time.Duration

	// MessagesPerSecond and MessageBurst shape the per-connection token
	// bucket; a client that exhausts it is closed with 1008. Defaults 50
	// and 200: a join with six neighbours and their ICE candidates fits in
	// the burst.
	MessagesPerSecond int
	MessageBurst      int

	// SendQueue is the per-connection queue of outgoing messages; a client
	// whose queue is full is dropped. Default 64.
	SendQueue int
	// HelloTimeout bounds the time to the client's hello. Default 10s.
	HelloTimeout time.Duration
	// PongWait is how long the connection may stay silent (no message and
	// no pong) before it is closed: the idle timeout. Default 60s.
	PongWait time.Duration
	// PingPeriod is how often the server pings. Default PongWait*9/10.
	PingPeriod time.Duration
	// WriteWait bounds each write. Default 10s.
	WriteWait time.Duration

	// Backplane carries cross-peer actions. Default NewMemoryBackplane().
	Backplane Backplane
	// Logger receives structured logs. Default zap.NewNop().
	Logger *zap.Logger
}

// withDefaults returns a copy of cfg with defaults filled in, or an error
// naming a field that cannot work.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.KnownSwarm == nil && cfg.KnownSiteSwarm == nil {
		return cfg, errors.New("coordinator: Config.KnownSwarm or KnownSiteSwarm is required")
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.MaxNeighbours, 6)
	def(&cfg.MaxDegree, 2*cfg.MaxNeighbours)
	def(&cfg.MaxPeersPerSwarm, 50000)
	def(&cfg.MaxSwarmsPerConn, 8)
	def(&cfg.MaxConnections, 100000)
	def(&cfg.MaxConnectionsPerAddress, DefaultMaxConnectionsPerAddress)
	def(&cfg.BanReporters, 2)
	def(&cfg.MessagesPerSecond, 50)
	def(&cfg.MessageBurst, 200)
	def(&cfg.SendQueue, 64)
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defDur(&cfg.LoadPollInterval, time.Second)
	defDur(&cfg.HelloTimeout, 10*time.Second)
	defDur(&cfg.PongWait, 60*time.Second)
	defDur(&cfg.PingPeriod, cfg.PongWait*9/10)
	defDur(&cfg.WriteWait, 10*time.Second)
	switch {
	case cfg.MaxNeighbours < 1 || cfg.MaxNeighbours > protocol.MaxNeighboursPerMessage:
		return cfg, errors.New("coordinator: MaxNeighbours must be in [1, 64]")
	case cfg.MaxDegree < cfg.MaxNeighbours:
		return cfg, errors.New("coordinator: MaxDegree must be at least MaxNeighbours")
	case cfg.MaxPeersPerSwarm < 1, cfg.MaxSwarmsPerConn < 1, cfg.MaxConnections < 1, cfg.BanReporters < 1,
		cfg.MessagesPerSecond < 1, cfg.MessageBurst < 1, cfg.SendQueue < 1:
		return cfg, errors.New("coordinator: limits must be positive")
	case cfg.PingPeriod >= cfg.PongWait:
		return cfg, errors.New("coordinator: PingPeriod must be shorter than PongWait")
	case cfg.HelloTimeout < 0 || cfg.WriteWait < 0 || cfg.LoadPollInterval < 0:
		return cfg, errors.New("coordinator: durations must be positive")
	}
	switch cfg.UploadPolicy {
	case "":
		cfg.UploadPolicy = protocol.UploadAlways
	case protocol.UploadAlways, protocol.UploadConsent, protocol.UploadNever:
	default:
		return cfg, errors.New(`coordinator: UploadPolicy must be "always", "consent" or "never"`)
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = remoteIP
	}
	if cfg.Site == nil {
		cfg.Site = RequestSite
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return cfg, nil
}

// RequestSite is the scheme (https on a TLS connection, else http) and the
// Host of r, as "scheme://host".
func RequestSite(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

func remoteIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
