package coordinator

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// ServeHTTP upgrades a same-origin request to the coordinator WebSocket and
// serves it until it closes. A cross-origin request gets 403 and an
// overloaded or closed coordinator 503, both before upgrading.
func (c *Coordinator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !c.OriginAllowed(r) {
		http.Error(w, "p2pxhr: cross-origin WebSocket refused", http.StatusForbidden)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "p2pxhr: WebSocket upgrade expected", http.StatusBadRequest)
		return
	}
	ip := c.cfg.ClientIP(r)
	addr := AddressKey(ip)
	if status := c.admit(addr); status != 0 {
		msg := "p2pxhr: coordinator unavailable"
		if status == http.StatusTooManyRequests {
			msg = "p2pxhr: too many coordinator connections from your address"
		}
		http.Error(w, msg, status)
		return
	}
	hw, rh := hijackable(w), &readHijacker{}
	if h, ok := hw.(http.Hijacker); ok {
		rh.ResponseWriter, rh.h = hw, h
		hw = rh
	}
	ws, err := c.upgrader.Upgrade(hw, r, nil)
	if err != nil {
		// gorilla has already answered with the reason.
		c.log.Debug("websocket upgrade failed", zap.Error(err))
		c.release(addr)
		return
	}
	cl := newClient(c, ws, c.cfg.Site(r), addr, networkKey(ip))
	cl.idle = newIdleWaiter(ws.NetConn(), rh.br)
	if c.cfg.ICEServers != nil {
		cl.iceServers = c.cfg.ICEServers(r)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		ws.Close()
		c.release(addr)
		return
	}
	c.clients[cl] = struct{}{}
	// Added under mu while not closed, so Close's Wait never races an Add.
	c.wg.Add(1)
	c.mu.Unlock()
	// The read pump gets a goroutine of its own and the handler returns:
	// the hijacked request, its headers and the handler's grown stack are
	// then freed, which costs less memory per connection than reusing the
	// handler's goroutine (measured: BENCH_RESULTS.md).
	cl.start()
}

// hijackable unwraps response writers (Caddy wraps them in types that have
// Unwrap but no Hijack, and gorilla then fails with 500) down to the
// innermost one that can be hijacked. Not the first: Caddy's access-log
// recorder hijacks into a connection that counts its bytes for the log
// entry written when the handler returns, and this handler returns while
// the WebSocket lives on — counting then would race with that entry. The
// loop is bounded in case a wrapper unwraps to itself.
func hijackable(w http.ResponseWriter) http.ResponseWriter {
	found := w
	for range 32 {
		if _, ok := w.(http.Hijacker); ok {
			found = w
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	return found
}

// OriginAllowed applies the same-origin rule to a request: no Origin (a
// non-browser peer), an Origin whose scheme and host are the request's
// site (Config.Site), or one of AllowedOrigins. The module uses it for its
// other client-facing routes.
func (c *Coordinator) OriginAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if sameOrigin(u.Scheme+"://"+u.Host, c.cfg.Site(r)) {
		return true
	}
	for _, a := range c.cfg.AllowedOrigins {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true
		}
	}
	return false
}

// admit reserves a connection for a client at addr, or says why not:
// 503 when the coordinator is closed or full, 429 when addr holds
// MaxConnectionsPerAddress connections already.
func (c *Coordinator) admit(addr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed || len(c.clients) >= c.cfg.MaxConnections:
		return http.StatusServiceUnavailable
	case addr != "" && c.cfg.MaxConnectionsPerAddress > 0 && c.perAddr[addr] >= c.cfg.MaxConnectionsPerAddress:
		return http.StatusTooManyRequests
	}
	if addr != "" {
		c.perAddr[addr]++
	}
	return 0
}

// release gives back what admit reserved for addr.
func (c *Coordinator) release(addr string) {
	c.mu.Lock()
	c.releaseLocked(addr)
	c.mu.Unlock()
}

func (c *Coordinator) releaseLocked(addr string) {
	if addr == "" {
		return
	}
	if c.perAddr[addr]--; c.perAddr[addr] <= 0 {
		delete(c.perAddr, addr)
	}
}

func (c *Coordinator) unregister(cl *client, welcomed bool) {
	c.mu.Lock()
	delete(c.clients, cl)
	c.releaseLocked(cl.addr)
	if welcomed {
		c.peers--
	}
	c.mu.Unlock()
}

// AddressKey names the client address that per-address limits count: the
// IPv4 address, or the /64 of an IPv6 address (one subscriber's network:
// a host may pick any address in it). "" for an invalid address.
func AddressKey(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// sameOrigin compares two origins (scheme://host[:port]): scheme and host
// case-insensitively, a default port (80 for http, 443 for https) the same
// as none.
func sameOrigin(a, b string) bool {
	return strings.EqualFold(canonicalOrigin(a), canonicalOrigin(b))
}

func canonicalOrigin(o string) string {
	o = strings.ToLower(o)
	switch {
	case strings.HasPrefix(o, "http://"):
		return strings.TrimSuffix(o, ":80")
	case strings.HasPrefix(o, "https://"):
		return strings.TrimSuffix(o, ":443")
	}
	return o
}
