package caddymodule

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/pion/turn/v5"
	"golang.org/x/time/rate"
)

// DefaultTURNRealm is TURN's realm when none is configured.
const DefaultTURNRealm = "p2pxhr"

// turnCredentialTTL is how long the TURN credentials of one welcome stay
// valid; a visitor that reconnects gets new ones.
const turnCredentialTTL = 12 * time.Hour

// maxQuotaVisitors bounds the per-visitor byte counts kept for quotas.
const maxQuotaVisitors = 100000

// TURNConfig runs a TURN relay for visitors that STUN cannot help (both
// behind symmetric NATs, or UDP to each other blocked). Off by default:
// every byte it relays crosses the server twice, as it would by HTTP.
type TURNConfig struct {
	// Listen is the UDP address of the TURN server. Default: port 3478 on
	// the addresses the site listens on, shared with the STUN server.
	Listen string `json:"listen,omitempty"`
	// Realm is TURN's realm, read when the listener first opens.
	// Default: p2pxhr.
	Realm string `json:"realm,omitempty"`
	// RelayAddress is the IP address peers send relayed packets to: the
	// server's public address. Required unless Listen names one.
	RelayAddress string `json:"relay_address,omitempty"`
	// Quota bounds the bytes relayed for one visitor (one client address)
	// per day; over it, its relays drop packets and new ones are refused.
	// Zero: no quota.
	Quota int64 `json:"quota,omitempty"`
	// Total bounds the bytes per second relayed for all visitors
	// together; packets beyond it are dropped. Zero: no bound.
	Total int64 `json:"total,omitempty"`
}

// parseTURN reads the turn block of the p2pxhr directive, the dispenser
// on its name.
func parseTURN(d *caddyfile.Dispenser, h *Handler) error {
	if h.TURN != nil {
		return d.Errf("turn given twice")
	}
	if d.NextArg() {
		return d.Errf("turn takes its options in a block: turn { relay_address <public IP> }")
	}
	cfg := &TURNConfig{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		switch name {
		case "listen", "realm", "relay_address":
			if !d.NextArg() {
				return d.Errf("%s needs a value", name)
			}
			*map[string]*string{"listen": &cfg.Listen, "realm": &cfg.Realm, "relay_address": &cfg.RelayAddress}[name] = d.Val()
		case "quota", "total":
			v, err := sizeArg(d, name)
			if err != nil {
				return err
			}
			if name == "quota" {
				cfg.Quota = v
			} else {
				cfg.Total = v
			}
		default:
			return d.Errf("unknown turn option %q; expected one of: listen, realm, relay_address, quota, total", name)
		}
		if d.NextArg() {
			return d.Errf("%s takes one value, got an extra %q", name, d.Val())
		}
	}
	h.TURN = cfg
	return nil
}

// validate checks what can be checked before listening.
func (c *TURNConfig) validate() error {
	if c.Quota < 0 || c.Total < 0 {
		return errors.New("p2pxhr: turn: quota and total must not be negative")
	}
	if c.RelayAddress != "" {
		if _, err := netip.ParseAddr(c.RelayAddress); err != nil {
			return fmt.Errorf("p2pxhr: turn: relay_address %q is not an IP address", c.RelayAddress)
		}
		return nil
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if ip, perr := netip.ParseAddr(host); err != nil || perr != nil || ip.IsUnspecified() {
		return errors.New("p2pxhr: turn needs relay_address <public IP>: the address peers send relayed packets to")
	}
	return nil
}

// turnPolicy is one config's TURN settings, consulted by the endpoints at
// each allocation and packet.
type turnPolicy struct {
	relayIP net.IP        // advertised in relayed candidates
	bindIP  string        // where relay sockets listen
	Quota   int64         // bytes per visitor per day
	total   *rate.Limiter // nil: no bound
	metrics *metrics

	mu      sync.Mutex
	relayed int64
	allocs  int
}

func newTurnPolicy(c *TURNConfig, m *metrics) *turnPolicy {
	p := &turnPolicy{Quota: c.Quota, metrics: m, bindIP: "0.0.0.0"}
	if c.RelayAddress != "" {
		p.relayIP = net.ParseIP(c.RelayAddress)
	}
	if host, _, err := net.SplitHostPort(c.Listen); err == nil && host != "" {
		p.bindIP = host
		if p.relayIP == nil {
			p.relayIP = net.ParseIP(host)
		}
	} else if p.relayIP != nil && p.relayIP.To4() == nil {
		p.bindIP = "::"
	}
	if c.Total > 0 {
		// A burst of a second's worth, at least a few datagrams.
		p.total = rate.NewLimiter(rate.Limit(c.Total), int(max(c.Total, 64<<10)))
	}
	return p
}

// count adds relayed bytes to this config's totals.
func (p *turnPolicy) count(n int) {
	p.mu.Lock()
	p.relayed += int64(n)
	p.mu.Unlock()
	if p.metrics != nil {
		p.metrics.relayBytes.Add(float64(n))
	}
}

func (p *turnPolicy) allocation(d int) {
	p.mu.Lock()
	p.allocs += d
	p.mu.Unlock()
}

// totals are the bytes relayed and the relays open now.
func (p *turnPolicy) totals() (int64, int) {
	if p == nil {
		return 0, 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.relayed, p.allocs
}

// credentials makes TURN credentials for a visitor in the TURN REST
// convention: username "<expiry>:<visitor>", password the base64
// HMAC-SHA1 of the username under the endpoint's secret. The visitor is a
// key of the client's address, so quotas follow the address, not the
// connection, and the address itself is not written anywhere.
func (ep *iceEndpoint) credentials(ip netip.Addr) (user, pass string, err error) {
	mac := hmac.New(sha256.New, []byte(ep.secret))
	mac.Write(ip.AsSlice())
	visitor := hex.EncodeToString(mac.Sum(nil)[:8])
	return turn.GenerateLongTermTURNRESTCredentials(ep.secret, visitor, turnCredentialTTL)
}

// quotaBook counts relayed bytes per visitor for the day.
type quotaBook struct {
	mu    sync.Mutex
	day   int64
	bytes map[string]int64
}

func newQuotaBook() *quotaBook { return &quotaBook{bytes: map[string]int64{}} }

func (q *quotaBook) rollover() {
	if d := time.Now().Unix() / 86400; d != q.day {
		q.day, q.bytes = d, map[string]int64{}
	}
}

// exceeded reports whether visitor has used up quota (0: no quota).
func (q *quotaBook) exceeded(visitor string, quota int64) bool {
	if quota <= 0 {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rollover()
	return q.bytes[visitor] >= quota
}

// charge adds n bytes to visitor's count and reports whether it is still
// within quota.
func (q *quotaBook) charge(visitor string, n int, quota int64) bool {
	if quota <= 0 {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rollover()
	if _, ok := q.bytes[visitor]; !ok && len(q.bytes) >= maxQuotaVisitors {
		return false // too many visitors to track today: refuse rather than forget
	}
	if q.bytes[visitor] >= quota {
		return false
	}
	q.bytes[visitor] += int64(n)
	return true
}

// relayGenerator makes the relay sockets of TURN allocations under the
// policy in force, counted and bounded.
type relayGenerator struct{ ep *iceEndpoint }

// Validate implements turn.RelayAddressGenerator.
func (g relayGenerator) Validate() error { return nil }

// AllocatePacketConn implements turn.RelayAddressGenerator.
func (g relayGenerator) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	p := g.ep.policy()
	if p == nil {
		return nil, nil, errors.New("TURN is off on this listener")
	}
	// The relay's address family is the advertised address's.
	network := "udp6"
	if p.relayIP.To4() != nil {
		network = "udp4"
	}
	conn, err := g.ep.net.ListenPacket(network, net.JoinHostPort(p.bindIP, strconv.Itoa(conf.RequestedPort)))
	if err != nil {
		return nil, nil, err
	}
	addr, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		conn.Close()
		return nil, nil, errors.New("relay socket has no UDP address")
	}
	relay := *addr
	if p.relayIP != nil {
		relay.IP = p.relayIP
	}
	p.allocation(1)
	return &relayConn{PacketConn: conn, p: p, q: g.ep.quota, visitor: conf.UserID}, &relay, nil
}

// AllocateListener implements turn.RelayAddressGenerator: no TCP relays.
func (g relayGenerator) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errors.New("TCP relays are not offered")
}

// AllocateConn implements turn.RelayAddressGenerator: no TCP relays.
func (g relayGenerator) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errors.New("TCP relays are not offered")
}

// relayConn is one allocation's relay socket: every datagram it carries,
// either way, is counted, charged to the visitor's quota and taken from
// the total rate; over either, it is dropped (UDP: the peers' congestion
// control slows down).
type relayConn struct {
	net.PacketConn
	p       *turnPolicy
	q       *quotaBook
	visitor string
	once    sync.Once
}

// admit decides whether n more bytes may be relayed.
func (c *relayConn) admit(n int) bool {
	if !c.q.charge(c.visitor, n, c.p.Quota) {
		return false
	}
	if c.p.total != nil && !c.p.total.AllowN(time.Now(), n) {
		return false
	}
	c.p.count(n)
	return true
}

// ReadFrom implements net.PacketConn: datagrams from peers to the client.
func (c *relayConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || c.admit(n) {
			return n, addr, err
		}
	}
}

// WriteTo implements net.PacketConn: datagrams from the client to peers.
func (c *relayConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if !c.admit(len(b)) {
		return len(b), nil // dropped, as a congested link would
	}
	return c.PacketConn.WriteTo(b, addr)
}

// Close implements net.PacketConn.
func (c *relayConn) Close() error {
	c.once.Do(func() { c.p.allocation(-1) })
	return c.PacketConn.Close()
}
