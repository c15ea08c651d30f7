package caddymodule

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/pion/turn/v5"

	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
	"github.com/p2pxhr/p2pxhr/protocol"
)

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// stunBinding asks the STUN server at addr for our address, as a browser
// gathering a server-reflexive candidate does.
func stunBinding(t *testing.T, addr string) (net.Addr, error) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, Conn: conn, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	mapped, err := c.SendBindingRequest()
	if err == nil && mapped.String() != conn.LocalAddr().String() {
		t.Errorf("STUN says we are %v, we are %v", mapped, conn.LocalAddr())
	}
	return mapped, err
}

// iceStats reads the "ice" part of {prefix}dashboard/stats (sites need `dashboard`).
func iceStats(t *testing.T, base string) iceStatus {
	t.Helper()
	_, body := testcaddy.FreshGet(t, base+"/_p2pxhr/dashboard/stats")
	var rep struct {
		ICE iceStatus `json:"ice"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("stats: %v: %s", err, body)
	}
	return rep.ICE
}

// welcomeICE is what a visitor of base is told in its welcome.
func welcomeICE(t *testing.T, base string) []protocol.ICEServer {
	t.Helper()
	return welcomeOf(t, base).ICEServers
}

// welcomeOf is the welcome a visitor of base gets.
func welcomeOf(t *testing.T, base string) *protocol.Welcome {
	t.Helper()
	conn, _, err := dialCoordinator(t, base, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := &wsPeer{t: t, conn: conn}
	p.send(&protocol.Hello{Version: protocol.CoordinatorVersion})
	w, ok := p.recv().(*protocol.Welcome)
	if !ok {
		t.Fatal("first message is not welcome")
	}
	return w
}

// The bare directive starts a STUN server on port 3478 of the addresses
// the site listens on (all of them: a Caddyfile site without bind).
// Another test process may hold that port: then the config loads all the
// same and stats say why in one line.
func TestBareDirectiveRunsSTUNOnTheSiteAddress(t *testing.T) {
	base := startCaddy(t, "p2pxhr {\n dashboard\n}\nrespond \"site\"")
	st := iceStats(t, base)
	switch {
	case st.STUN == "udp :3478":
		if _, err := stunBinding(t, "127.0.0.1:3478"); err != nil {
			t.Fatalf("binding request: %v", err)
		}
		ice := welcomeICE(t, base)
		if len(ice) != 1 || ice[0].URLs[0] != "stun:127.0.0.1:3478" {
			t.Fatalf("welcome ICE servers %+v, want stun:127.0.0.1:3478", ice)
		}
	case strings.Contains(st.STUNError, "udp :3478: address already in use"):
		t.Logf("port 3478 is busy here: %s", st.STUNError)
	default:
		t.Fatalf("stats ice %+v: neither listening on 127.0.0.1:3478 nor saying why not", st)
	}
	if st.TURN != "off" {
		t.Errorf("TURN %q without being configured", st.TURN)
	}
}

// The configured STUN address is served, and visitors are told the host
// they loaded the page from with that port; ice_server entries follow.
func TestSTUNServesBindingAndWelcomeNamesIt(t *testing.T) {
	port := freeUDPPort(t)
	base := startCaddy(t, fmt.Sprintf("p2pxhr {\n dashboard\n stun 127.0.0.1:%d\n ice_server stun:stun.example.org:3478\n}\nrespond \"site\"", port))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if _, err := stunBinding(t, addr); err != nil {
		t.Fatalf("binding request: %v", err)
	}
	ice := welcomeICE(t, base)
	want := []string{"stun:" + addr, "stun:stun.example.org:3478"}
	if len(ice) != 2 || ice[0].URLs[0] != want[0] || ice[1].URLs[0] != want[1] {
		t.Fatalf("welcome ICE servers %+v, want %v", ice, want)
	}
	if st := iceStats(t, base); st.STUN != "udp "+addr || st.STUNError != "" {
		t.Fatalf("stats ice %+v", st)
	}
}

// A busy port does not stop the config: the site serves, the welcome
// leaves STUN out, and the log and stats say why in one line.
func TestSTUNPortBusyStillLoads(t *testing.T) {
	busy, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.LocalAddr().String()
	base := startCaddy(t, "p2pxhr {\n dashboard\n stun "+addr+"\n ice_server stun:stun.example.org:3478\n}\nrespond \"site\"")
	if _, body := get(t, base+"/"); string(body) != "site" {
		t.Fatalf("site answered %q", body)
	}
	st := iceStats(t, base)
	if st.STUN != "off" || !strings.Contains(st.STUNError, "cannot listen on udp "+addr+": address already in use") ||
		strings.Contains(st.STUNError, "\n") {
		t.Fatalf("stats ice %+v: want one line saying the port is busy", st)
	}
	if ice := welcomeICE(t, base); len(ice) != 1 || ice[0].URLs[0] != "stun:stun.example.org:3478" {
		t.Fatalf("welcome ICE servers %+v, want only the configured one", ice)
	}
}

// `stun off` starts no listener and tells visitors of none.
func TestSTUNOff(t *testing.T) {
	base := startCaddy(t, "p2pxhr {\n dashboard\n stun off\n}\nrespond \"site\"")
	if st := iceStats(t, base); st.STUN != "off" || st.STUNError != "" {
		t.Fatalf("stats ice %+v", st)
	}
	if ice := welcomeICE(t, base); ice == nil || len(ice) != 0 {
		t.Fatalf("welcome ICE servers %#v, want an empty list", ice)
	}
}

// Two sites of one config share the STUN port, and a reload keeps the
// very same socket: the new config provisions while the old one still
// holds it, which would fail with "address already in use" otherwise.
func TestSTUNSharedBySitesAndKeptAcrossReload(t *testing.T) {
	port := freeUDPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	a := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	b := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	config := func(body string) string {
		block := fmt.Sprintf("p2pxhr {\n dashboard\n stun %s\n}\nrespond %q", addr, body)
		return fmt.Sprintf("%s%s {\n%s\n}\n%s {\n%s\n}\n", testcaddy.GlobalOptions(), a, block, b, block)
	}
	startCaddyfile(t, config("one"), a)
	for _, base := range []string{a, b} {
		if st := iceStats(t, base); st.STUN != "udp "+addr {
			t.Fatalf("%s: stats ice %+v", base, st)
		}
	}
	before, ok := pooledEndpoint("udp/" + addr)
	if !ok {
		t.Fatal("no pooled endpoint")
	}
	if _, err := stunBinding(t, addr); err != nil {
		t.Fatal(err)
	}

	// Reload, as `caddy reload` does: load a changed config in place.
	// (startCaddyfile holds the process's Caddy lock for this test.)
	cf2 := config("two")
	if err := caddy.Load(adapt(t, cf2), true); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if _, body := testcaddy.FreshGet(t, a+"/"); string(body) != "two" { // the reload closed the old idle connections
		t.Fatalf("after reload the site answered %q", body)
	}
	if st := iceStats(t, a); st.STUN != "udp "+addr || st.STUNError != "" {
		t.Fatalf("after reload: stats ice %+v", st)
	}
	after, _ := pooledEndpoint("udp/" + addr)
	if after != before {
		t.Fatal("the reload opened a new STUN socket instead of keeping the old one")
	}
	if _, err := stunBinding(t, addr); err != nil {
		t.Fatalf("binding after reload: %v", err)
	}
}

// pooledEndpoint looks up an endpoint in the pool without taking a
// reference.
func pooledEndpoint(key string) (*iceEndpoint, bool) {
	var ep *iceEndpoint
	iceEndpoints.Range(func(k, v any) bool {
		if k == key {
			ep = v.(*iceEndpoint)
			return false
		}
		return true
	})
	return ep, ep != nil
}

func TestCaddyfileSTUNAndTURN(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`p2pxhr {
		stun :3479
		turn {
			listen 0.0.0.0:3478
			realm example.com
			relay_address 203.0.113.5
			quota 100MiB
			total 10MB/s
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := TURNConfig{Listen: "0.0.0.0:3478", Realm: "example.com", RelayAddress: "203.0.113.5", Quota: 100 << 20, Total: 10_000_000}
	if h.STUN != ":3479" || h.TURN == nil || *h.TURN != want {
		t.Fatalf("parsed stun %q turn %+v", h.STUN, h.TURN)
	}
	for input, wantErr := range map[string]string{
		"p2pxhr {\n stun\n}":                              "stun takes off or a UDP listen address",
		"p2pxhr {\n turn {\n  relay 1.2.3.4\n }\n}":       `unknown turn option "relay"; expected one of: listen, realm, relay_address, quota, total, at Testfile:3`,
		"p2pxhr {\n turn {\n  quota lots\n }\n}":          `quota: "lots" is not a size`,
		"p2pxhr {\n turn\n turn\n}":                       "turn given twice",
		"p2pxhr {\n turn {\n  realm a b\n }\n}":           `realm takes one value, got an extra "b"`,
		"p2pxhr {\n turn on\n}":                           "turn takes its options in a block",
		"p2pxhr {\n turn {\n  relay_address\n }\n}":       "relay_address needs a value",
		"p2pxhr {\n stun :1 :2\n}":                        `stun takes one value, got an extra ":2"`,
		"p2pxhr {\n turn {\n  listen :3478\n }\n stun\n}": "Testfile:5",
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: error %v, want one containing %q", input, err, wantErr)
		}
	}
	for _, tc := range []struct {
		h    Handler
		want string
	}{
		{Handler{STUN: "3478"}, "want off or a UDP listen address"},
		{Handler{TURN: &TURNConfig{}}, "turn needs relay_address"},
		{Handler{TURN: &TURNConfig{Listen: ":3478"}}, "turn needs relay_address"},
		{Handler{TURN: &TURNConfig{RelayAddress: "turn.example.com"}}, "is not an IP address"},
		{Handler{ICEServers: []ICEServer{{URLs: []string{"http://x"}}}}, "must be a stun:, stuns:, turn: or turns: URL"},
	} {
		h := tc.h
		fillDefaults(&h)
		if err := h.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", tc.h, err, tc.want)
		}
	}
	h = Handler{TURN: &TURNConfig{Listen: "10.0.0.1:3478"}}
	fillDefaults(&h)
	if err := h.Validate(); err != nil {
		t.Errorf("a TURN listen address with an IP needs no relay_address: %v", err)
	}
}
