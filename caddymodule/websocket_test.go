package caddymodule

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/gorilla/websocket"

	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
)

// dialFrom opens a coordinator WebSocket from the loopback address ip,
// with extra headers; it returns the handshake's status.
func dialFrom(t *testing.T, base, ip string, hdr http.Header) (*websocket.Conn, int) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second,
		NetDial: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).Dial}
	conn, res, err := d.Dial("ws"+strings.TrimPrefix(base, "http")+"/_p2pxhr/ws", hdr)
	if err != nil {
		if res == nil {
			t.Fatalf("dial: %v", err)
		}
		return nil, res.StatusCode
	}
	t.Cleanup(func() { conn.Close() })
	return conn, http.StatusSwitchingProtocols
}

func TestWebSocketsPerAddressAreCapped(t *testing.T) {
	base := startCaddy(t, "p2pxhr\nrespond \"site\"")
	for i := range defaultConnectionsPerAddress {
		if _, status := dialFrom(t, base, "127.0.0.1", nil); status != http.StatusSwitchingProtocols {
			t.Fatalf("connection %d from one address: status %d", i+1, status)
		}
	}
	if _, status := dialFrom(t, base, "127.0.0.1", nil); status != http.StatusTooManyRequests {
		t.Fatalf("connection %d from one address: status %d, want 429", defaultConnectionsPerAddress+1, status)
	}
	// Another address is not affected.
	if _, status := dialFrom(t, base, "127.0.0.2", nil); status != http.StatusSwitchingProtocols {
		t.Fatalf("another address: status %d", status)
	}
}

// Behind a trusted proxy the cap counts the visitors Caddy sees through
// it, not the proxy's own address.
func TestWebSocketCapUsesCaddysClientIP(t *testing.T) {
	base := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	global := strings.Replace(testcaddy.GlobalOptions(), "admin off", "admin off\n\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}", 1)
	startCaddyfile(t, global+base+" {\n\tp2pxhr {\n\t\tmax_connections_per_address 2\n\t}\n\trespond \"site\"\n}\n", base)
	visitor := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
	for _, ip := range []string{"10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		if _, status := dialFrom(t, base, "127.0.0.1", visitor(ip)); status != http.StatusSwitchingProtocols {
			t.Fatalf("visitor %s through the proxy: status %d", ip, status)
		}
	}
	if _, status := dialFrom(t, base, "127.0.0.1", visitor("10.0.0.1")); status != http.StatusTooManyRequests {
		t.Fatalf("third connection of 10.0.0.1: status %d, want 429", status)
	}
}

func TestConnectionsPerAddressSubdirective(t *testing.T) {
	for _, c := range []struct {
		input string
		want  int
	}{
		{"p2pxhr {\n max_connections_per_address 200\n}", 200},
		{"p2pxhr {\n max_connections_per_address off\n}", -1},
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.input)); err != nil || h.MaxConnectionsPerAddress != c.want {
			t.Errorf("%q: %v, %d", c.input, err, h.MaxConnectionsPerAddress)
		}
	}
	for _, input := range []string{"p2pxhr {\n\tmax_connections_per_address many\n}", "p2pxhr {\n\tmax_connections_per_address 0\n}",
		"p2pxhr {\n\tmax_connections_per_address\n}"} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), "Testfile:2") || !strings.Contains(err.Error(), "positive whole number or off") {
			t.Errorf("%q: error %v, want one naming line 2 and what was expected", input, err)
		}
	}
}

// The coordinator's same-origin check compares schemes too, with the
// scheme a trusted proxy says it terminated TLS for.
func TestOriginCheckComparesTheSchemeThroughCaddy(t *testing.T) {
	base := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	global := strings.Replace(testcaddy.GlobalOptions(), "admin off", "admin off\n\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}", 1)
	startCaddyfile(t, global+base+" {\n\tp2pxhr\n\trespond \"site\"\n}\n", base)
	host := strings.TrimPrefix(base, "http://")
	for _, c := range []struct {
		origin, proto string
		want          int
	}{
		{"http://" + host, "", http.StatusSwitchingProtocols},
		{"https://" + host, "", http.StatusForbidden},
		{"https://" + host, "https", http.StatusSwitchingProtocols},
		{"http://" + host, "https", http.StatusForbidden},
	} {
		hdr := http.Header{"Origin": {c.origin}}
		if c.proto != "" {
			hdr.Set("X-Forwarded-Proto", c.proto)
		}
		if _, status := dialFrom(t, base, "127.0.0.1", hdr); status != c.want {
			t.Errorf("Origin %s, X-Forwarded-Proto %q: status %d, want %d", c.origin, c.proto, status, c.want)
		}
	}
}

// TestCoordinatorUnderAccessLog: with access logs on, Caddy wraps the
// response in a recorder whose hijacked connection counts the bytes it
// carries, and reads those counts to log the request once the handler
// returns. The coordinator's handler returns while the WebSocket lives on,
// so the connection must not be the counting one: under the race detector
// (as ./test.sh runs) the hello and welcome, read and written after the
// handler returned, would otherwise be a data race.
func TestCoordinatorUnderAccessLog(t *testing.T) {
	base := startCaddy(t, "log {\n\toutput discard\n}\np2pxhr\nrespond \"site\"")
	for i := range 5 {
		conn, status := dialFrom(t, base, "127.0.0.1", nil)
		if status != http.StatusSwitchingProtocols {
			t.Fatalf("connection %d: status %d", i, status)
		}
		if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","version":1}`)); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, msg, err := conn.ReadMessage(); err != nil || !strings.Contains(string(msg), `"welcome"`) {
			t.Fatalf("connection %d: first message %q, %v; want the welcome", i, msg, err)
		}
		conn.Close()
	}
}
