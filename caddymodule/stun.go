package caddymodule

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/pion/logging"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/turn/v5"
	"go.uber.org/zap"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// DefaultSTUNPort is the UDP port of the embedded STUN server (RFC 5389's).
const DefaultSTUNPort = 3478

// iceEndpoints holds the UDP listeners of the embedded STUN/TURN server,
// keyed by listen address. Pooled so that a reload (whose new config
// provisions before the old one is cleaned up) keeps the socket, and so
// that several sites asking for one address share it.
var iceEndpoints = caddy.NewUsagePool()

// iceEndpoint is one UDP listener answering STUN binding requests and,
// while a config enables TURN on it, TURN allocations. It is pion/turn's
// server: with no TURN policy registered, every allocation is refused
// and only STUN is served.
type iceEndpoint struct {
	addr   string
	server *turn.Server
	net    transport.Net
	// secret keys the TURN credentials (TURN REST convention): the
	// process's, so credentials stay valid across reloads and on every
	// listener of a site with several addresses.
	secret string
	quota  *quotaBook

	mu       sync.Mutex
	policies []*turnPolicy // registered by configs with turn here; the last wins
}

var (
	secretOnce sync.Once
	secret     string
)

// turnSecret is the key of this process's TURN credentials, random,
// never written anywhere.
func turnSecret() string {
	secretOnce.Do(func() {
		var key [32]byte
		rand.Read(key[:])
		secret = string(key[:])
	})
	return secret
}

// newICEEndpoint listens on addr (network "udp", "udp4"…) through nw and
// starts serving. realm is TURN's realm, fixed for the socket's life.
func newICEEndpoint(nw transport.Net, network, addr, realm string, logger *zap.Logger) (*iceEndpoint, error) {
	conn, err := nw.ListenPacket(network, addr)
	if err != nil {
		return nil, err
	}
	ep := &iceEndpoint{addr: addr, net: nw, secret: turnSecret(), quota: newQuotaBook()}
	rest := turn.LongTermTURNRESTAuthHandler(ep.secret, pionLogger(logger, "turn-auth"))
	ep.server, err = turn.NewServer(turn.ServerConfig{
		Realm:         realm,
		LoggerFactory: pionLoggerFactory{logger},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            conn,
			RelayAddressGenerator: relayGenerator{ep},
		}},
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			if ep.policy() == nil {
				return "", nil, false
			}
			return rest(ra)
		},
		QuotaHandler: func(user, _ string, _ net.Addr) bool {
			p := ep.policy()
			return p != nil && !ep.quota.exceeded(user, p.Quota)
		},
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	return ep, nil
}

// Destruct implements caddy.Destructor: the last config using the
// endpoint is gone.
func (ep *iceEndpoint) Destruct() error { return ep.server.Close() }

// policy is the TURN policy in force, nil when no config enables TURN here.
func (ep *iceEndpoint) policy() *turnPolicy {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if len(ep.policies) == 0 {
		return nil
	}
	return ep.policies[len(ep.policies)-1]
}

func (ep *iceEndpoint) register(p *turnPolicy) {
	ep.mu.Lock()
	ep.policies = append(ep.policies, p)
	ep.mu.Unlock()
}

func (ep *iceEndpoint) unregister(p *turnPolicy) {
	ep.mu.Lock()
	ep.policies = slices.DeleteFunc(ep.policies, func(q *turnPolicy) bool { return q == p })
	ep.mu.Unlock()
}

// iceListener is what one handler holds of an endpoint: the pool key to
// release, and whether it came up.
type iceListener struct {
	key string
	ep  *iceEndpoint
}

// openICEEndpoint takes a reference to the pooled endpoint on addr,
// opening it if needed.
func openICEEndpoint(addr, realm string, logger *zap.Logger) (*iceListener, error) {
	key := "udp/" + addr
	v, _, err := iceEndpoints.LoadOrNew(key, func() (caddy.Destructor, error) {
		nw, err := stdnet.NewNet()
		if err != nil {
			return nil, err
		}
		return newICEEndpoint(nw, "udp", addr, realm, logger)
	})
	if err != nil {
		return nil, err
	}
	return &iceListener{key: key, ep: v.(*iceEndpoint)}, nil
}

func (l *iceListener) close() error {
	_, err := iceEndpoints.Delete(l.key)
	return err
}

// iceState is a handler's part of the embedded STUN and TURN servers.
type iceState struct {
	stunPort  int            // advertised; 0 when STUN is off or could not start
	turnPort  int            // advertised; 0 without TURN
	listeners []*iceListener // references to release on Cleanup
	turn      *turnPolicy    // registered on the TURN endpoints
	turnEPs   []*iceEndpoint // where turn is registered
	status    iceStatus      // for {prefix}dashboard/stats
	servers   []ICEServer    // the ice_server entries, after the embedded STUN
}

// iceStatus is the "ice" part of {prefix}dashboard/stats: where STUN and TURN
// listen, or why they do not, in one line each.
type iceStatus struct {
	// STUN is "udp <addr>[, udp <addr>]", or "off".
	STUN string `json:"stun"`
	// STUNError says why the embedded STUN server is not running.
	STUNError string `json:"stunError,omitempty"`
	// TURN is "udp <addr>..." or "off".
	TURN string `json:"turn"`
	// RelayedBytes counts bytes TURN relayed between peers since this
	// config loaded: server bandwidth, as HTTP would be.
	RelayedBytes int64 `json:"relayedBytes"`
	// Allocations are the TURN relays open now.
	Allocations int `json:"allocations"`
}

// pionLoggerFactory routes pion's logs to Caddy's logger.
type pionLoggerFactory struct{ l *zap.Logger }

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger(f.l, scope)
}

func pionLogger(l *zap.Logger, scope string) logging.LeveledLogger {
	if l == nil {
		l = zap.NewNop()
	}
	return zapLeveled{l.Named(scope).Sugar()}
}

// zapLeveled adapts zap to pion's LeveledLogger. Errors of single packets
// (a scanner, an expired credential) are not the server's errors: they go
// to debug, so a public port cannot flood the log.
type zapLeveled struct{ s *zap.SugaredLogger }

func (z zapLeveled) Trace(string)              {}
func (z zapLeveled) Tracef(string, ...any)     {}
func (z zapLeveled) Debug(m string)            { z.s.Debug(m) }
func (z zapLeveled) Debugf(f string, a ...any) { z.s.Debugf(f, a...) }
func (z zapLeveled) Info(m string)             { z.s.Debug(m) }
func (z zapLeveled) Infof(f string, a ...any)  { z.s.Debugf(f, a...) }
func (z zapLeveled) Warn(m string)             { z.s.Debug(m) }
func (z zapLeveled) Warnf(f string, a ...any)  { z.s.Debugf(f, a...) }
func (z zapLeveled) Error(m string)            { z.s.Debug(m) }
func (z zapLeveled) Errorf(f string, a ...any) { z.s.Debugf(f, a...) }

// siteHosts are the hosts the config's HTTP servers listen on ("" for
// all addresses), so the embedded STUN server answers where the site
// does. Without an http app (a handler provisioned alone) it is all.
func siteHosts(ctx caddy.Context) []string {
	appIface, err := ctx.AppIfConfigured("http")
	app, ok := appIface.(*caddyhttp.App)
	if err != nil || !ok {
		return []string{""}
	}
	var hosts []string
	for _, srv := range app.Servers {
		listen := srv.Listen
		if len(listen) == 0 {
			listen = []string{""}
		}
		for _, l := range listen {
			host := ""
			if l != "" {
				na, err := caddy.ParseNetworkAddress(l)
				if err != nil || na.IsUnixNetwork() || na.IsFdNetwork() {
					continue
				}
				host = na.Host
			}
			if host == "" {
				return []string{""} // all addresses cover every other
			}
			if !slices.Contains(hosts, host) {
				hosts = append(hosts, host)
			}
		}
	}
	if len(hosts) == 0 {
		return []string{""}
	}
	slices.Sort(hosts)
	return hosts
}

// listenAddrs are the UDP addresses for a STUN or TURN listener: the
// configured one, or port on each of the site's hosts.
func listenAddrs(ctx caddy.Context, configured string, port int) []string {
	if configured != "" {
		return []string{configured}
	}
	var out []string
	for _, h := range siteHosts(ctx) {
		out = append(out, net.JoinHostPort(h, strconv.Itoa(port)))
	}
	return out
}

// portOf is the port of a listen address such as ":3478".
func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// provisionICE opens (or shares) the embedded STUN listeners and, with
// TURN configured, the TURN ones. A STUN port that cannot be bound is not
// an error: the config loads, peers on one network still connect, and
// the log and {prefix}dashboard/stats say why. TURN, asked for explicitly, must
// start.
func (h *Handler) provisionICE(ctx caddy.Context) error {
	st := &iceState{servers: h.ICEServers}
	h.ice = st
	st.status.STUN, st.status.TURN = "off", "off"
	realm := DefaultTURNRealm
	if h.TURN != nil && h.TURN.Realm != "" {
		realm = h.TURN.Realm
	}
	if h.STUN != "off" {
		var up, failed []string
		for _, addr := range listenAddrs(ctx, h.STUN, DefaultSTUNPort) {
			l, err := openICEEndpoint(addr, realm, h.logger)
			if err != nil {
				failed = append(failed, fmt.Sprintf("cannot listen on udp %s: %v", addr, unwrapOpError(err)))
				continue
			}
			st.listeners = append(st.listeners, l)
			st.stunPort = portOf(addr)
			up = append(up, "udp "+addr)
		}
		if len(up) > 0 {
			st.status.STUN = strings.Join(up, ", ")
		}
		if len(failed) > 0 {
			st.status.STUNError = "embedded STUN server: " + strings.Join(failed, "; ") +
				"; visitors on different networks may not reach each other (peers on one network still do)"
			h.logger.Warn(st.status.STUNError)
		}
	}
	if h.TURN == nil {
		return nil
	}
	st.turn = newTurnPolicy(h.TURN, h.metrics)
	var up []string
	for _, addr := range listenAddrs(ctx, h.TURN.Listen, DefaultSTUNPort) {
		l, err := openICEEndpoint(addr, realm, h.logger)
		if err != nil {
			st.close()
			return fmt.Errorf("turn: cannot listen on udp %s: %w", addr, unwrapOpError(err))
		}
		st.listeners = append(st.listeners, l)
		l.ep.register(st.turn)
		st.turnEPs = append(st.turnEPs, l.ep)
		st.turnPort = portOf(addr)
		up = append(up, "udp "+addr)
	}
	st.status.TURN = strings.Join(up, ", ")
	return nil
}

// close releases the listeners; the last user of a socket closes it.
func (st *iceState) close() error {
	if st == nil {
		return nil
	}
	for _, ep := range st.turnEPs {
		ep.unregister(st.turn)
	}
	st.turnEPs = nil
	var errs []error
	for _, l := range st.listeners {
		errs = append(errs, l.close())
	}
	st.listeners = nil
	return errors.Join(errs...)
}

// iceServersFor is what the coordinator's welcome tells a visitor:
// the embedded STUN server at the host the page came from, the
// configured ice_server entries, then TURN with credentials for this
// visitor.
func (h *Handler) iceServersFor(r *http.Request) []protocol.ICEServer {
	st := h.ice
	host := requestHost(r)
	var out []protocol.ICEServer
	if st.stunPort != 0 && host != "" {
		out = append(out, protocol.ICEServer{URLs: []string{"stun:" + net.JoinHostPort(host, strconv.Itoa(st.stunPort))}})
	}
	out = append(out, st.servers...)
	if st.turnPort != 0 && host != "" && len(st.turnEPs) > 0 {
		user, pass, err := st.turnEPs[0].credentials(clientIP(r))
		if err == nil {
			out = append(out, protocol.ICEServer{
				URLs:     []string{"turn:" + net.JoinHostPort(host, strconv.Itoa(st.turnPort)) + "?transport=udp"},
				Username: user, Credential: pass,
			})
		}
	}
	if len(out) > protocol.MaxICEServers {
		out = out[:protocol.MaxICEServers]
	}
	return out
}

// requestHost is the request's host without its port, as a URL host
// takes it (an IPv6 address unbracketed: JoinHostPort adds them).
func requestHost(r *http.Request) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host
}

// unwrapOpError keeps the reason ("address already in use") of a
// listen error, without the "listen udp :3478: bind:" the message repeats.
func unwrapOpError(err error) error {
	var sys *os.SyscallError
	if errors.As(err, &sys) {
		return sys.Err
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}
