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
	c.mu.Lock()
	full := c.closed || len(c.clients) >= c.cfg.MaxConnections
	c.mu.Unlock()
	if full {
		http.Error(w, "p2pxhr: coordinator unavailable", http.StatusServiceUnavailable)
		return
	}
	ws, err := c.upgrader.Upgrade(hijackable(w), r, nil)
	if err != nil {
		// gorilla has already answered with the reason.
		c.log.Debug("websocket upgrade failed", zap.Error(err))
		return
	}
	cl := newClient(c, ws, c.cfg.Site(r), networkKey(c.cfg.ClientIP(r)))
	if c.cfg.ICEServers != nil {
		cl.iceServers = c.cfg.ICEServers(r)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		ws.Close()
		return
	}
	c.clients[cl] = struct{}{}
	// Added under mu while not closed, so Close's Wait never races an Add.
	c.wg.Add(2)
	c.mu.Unlock()
	// Both pumps get goroutines of their own and the handler returns: the
	// hijacked request, its headers and the handler's grown stack are then
	// freed, which costs less memory per connection than reusing the
	// handler's goroutine for the read pump (measured: BENCH_RESULTS.md).
	go cl.writePump()
	go cl.readPump()
}

// hijackable unwraps response writers (Caddy wraps them in types that have
// Unwrap but no Hijack, and gorilla then fails with 500) until one can be
// hijacked. The loop is bounded in case a wrapper unwraps to itself.
func hijackable(w http.ResponseWriter) http.ResponseWriter {
	for range 32 {
		if _, ok := w.(http.Hijacker); ok {
			return w
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
	return w
}

// OriginAllowed applies the same-origin rule to a request: no Origin (a
// non-browser peer), an Origin whose host is the request's Host, or one of
// AllowedOrigins. The module uses it for its other client-facing routes.
func (c *Coordinator) OriginAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, a := range c.cfg.AllowedOrigins {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true
		}
	}
	return false
}

func (c *Coordinator) unregister(cl *client, welcomed bool) {
	c.mu.Lock()
	delete(c.clients, cl)
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
