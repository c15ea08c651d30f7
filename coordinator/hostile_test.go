package coordinator

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// sync waits until the server has handled everything tc sent so far: a
// leave for a swarm it is not in is answered with an error, in order.
func (tc *testClient) sync() {
	tc.t.Helper()
	tc.send(&protocol.Leave{Swarm: otherSwarm})
	tc.wantError(protocol.ErrCodeNotJoined)
}

// A peer's stats are client-claimed: a membership cannot count more than
// the resource for its downloads (and a bounded multiple for uploads),
// whatever it sends, and the totals never overflow.
func TestStatsFromPeersAreClamped(t *testing.T) {
	const size = 1 << 20
	c, url := startServer(t, Config{
		SwarmBlocks: func(string) (int, bool) { return 4, true },
		SwarmSize:   func(string) (int64, bool) { return size, true },
	}, nil)
	const peers = 3
	for range peers {
		p := dial(t, url)
		p.join(testSwarm)
		p.send(&protocol.Stats{Swarm: testSwarm, BytesFromHTTP: protocol.MaxCounter,
			BytesFromPeers: protocol.MaxCounter, BytesUploaded: protocol.MaxCounter})
		p.sync()
	}
	st := c.Stats()
	if st.BytesFromHTTP < 0 || st.BytesFromHTTP > peers*size || st.BytesFromPeers < 0 || st.BytesFromPeers > peers*size {
		t.Errorf("downloads counted %d from HTTP and %d from peers for %d peers of a %d-byte file",
			st.BytesFromHTTP, st.BytesFromPeers, peers, size)
	}
	if st.BytesUploaded < 0 || st.BytesUploaded > peers*maxUploadCopies*size {
		t.Errorf("uploads counted %d", st.BytesUploaded)
	}
	if g := st.Groups["a"]; g.BytesFromHTTP != st.BytesFromHTTP {
		t.Errorf("group totals %+v differ from the totals %+v", g, st)
	}
}

// Totals saturate instead of wrapping around.
func TestStatsTotalsSaturate(t *testing.T) {
	var b statsBook
	g := b.groupKey("")
	for range 2000 {
		b.add(g, protocol.MaxCounter, protocol.MaxCounter, protocol.MaxCounter)
	}
	if b.total.BytesFromHTTP != protocol.MaxCounter || b.groups[g].BytesUploaded != protocol.MaxCounter {
		t.Errorf("totals %+v, group %+v; want them held at %d", b.total, b.groups[g], int64(protocol.MaxCounter))
	}
}

// A join for the largest manifest the protocol allows (MaxBlocks blocks,
// a 128 KiB bitfield) goes through; any other message is still held to
// 64 KiB.
func TestJoinForMaxBlocksFits(t *testing.T) {
	_, url := startServer(t, Config{SwarmBlocks: func(string) (int, bool) { return protocol.MaxBlocks, true }}, nil)
	full := protocol.NewBitfield(protocol.MaxBlocks)
	for i := range protocol.MaxBlocks {
		full.Set(i)
	}
	seeder := dial(t, url)
	seeder.send(&protocol.Join{Swarm: testSwarm, URL: "/" + strings.Repeat("x", protocol.MaxURLSize-1),
		Blocks: protocol.MaxBlocks, Bitfield: full})
	if n, ok := seeder.read().(*protocol.Neighbours); !ok {
		t.Fatalf("a join for %d blocks was answered with %#v", protocol.MaxBlocks, n)
	}
	getter := dial(t, url)
	if n := getter.join2(testSwarm, protocol.MaxBlocks); len(n.Peers) != 1 || n.Peers[0].ID != seeder.id {
		t.Fatalf("the getter was offered %v", n.Peers)
	}

	big := dial(t, url)
	big.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"leave","swarm":"`+strings.Repeat("5", 70<<10)+`"}`))
	if code := closeCode(t, big.ws); code != websocket.CloseMessageTooBig {
		t.Errorf("a 70 KiB leave: close %d, want %d", code, websocket.CloseMessageTooBig)
	}
}

// join2 joins a swarm of n blocks with nothing held.
func (tc *testClient) join2(swarm string, n int) *protocol.Neighbours {
	tc.t.Helper()
	tc.send(&protocol.Join{Swarm: swarm, Blocks: n, Bitfield: protocol.NewBitfield(n)})
	nb, ok := tc.read().(*protocol.Neighbours)
	if !ok {
		tc.t.Fatalf("join answered with %#v", nb)
	}
	return nb
}

// One address holds at most MaxConnectionsPerAddress connections; a
// connection that closes gives its place back.
func TestConnectionsPerAddressCap(t *testing.T) {
	_, url := startServer(t, Config{MaxConnectionsPerAddress: 2}, nil)
	a := dial(t, url)
	dial(t, url)
	if _, res, err := dialRaw(t, url, nil); err == nil || res == nil || res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection from one address: %v, %v", err, res)
	}
	a.ws.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ws, _, err := dialRaw(t, url, nil)
		if err == nil {
			ws.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed connection never gave its place back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
	} {
		if got := AddressKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("AddressKey(%s) = %q, want %q", in, got, want)
		}
	}
	if AddressKey(netip.Addr{}) != "" {
		t.Error("an invalid address has a key")
	}
}

// Same origin means same scheme too: a page of http://host may not use
// the coordinator of https://host, nor the other way round.
func TestOriginCheckComparesTheScheme(t *testing.T) {
	_, url := startServer(t, Config{}, nil) // served over plain http
	host := strings.TrimPrefix(url, "ws://")
	for origin, want := range map[string]int{
		"http://" + host:                  http.StatusSwitchingProtocols,
		"HTTP://" + strings.ToUpper(host): http.StatusSwitchingProtocols,
		"https://" + host:                 http.StatusForbidden,
		"ws://" + host:                    http.StatusForbidden,
	} {
		_, resp, err := dialRaw(t, url, http.Header{"Origin": {origin}})
		if resp == nil {
			t.Fatalf("%s: %v", origin, err)
		}
		if resp.StatusCode != want {
			t.Errorf("Origin %s: status %d, want %d", origin, resp.StatusCode, want)
		}
	}
	// The site as Config.Site names it (a proxy in front terminated TLS).
	_, tlsURL := startServer(t, Config{Site: func(r *http.Request) string { return "https://" + r.Host }}, nil)
	tlsHost := strings.TrimPrefix(tlsURL, "ws://")
	for origin, want := range map[string]int{
		"https://" + tlsHost: http.StatusSwitchingProtocols,
		"http://" + tlsHost:  http.StatusForbidden,
	} {
		_, resp, _ := dialRaw(t, tlsURL, http.Header{"Origin": {origin}})
		if resp == nil || resp.StatusCode != want {
			t.Errorf("behind TLS, Origin %s: %v, want %d", origin, resp, want)
		}
	}
}

func TestSameOriginDefaultPorts(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"https://a.test", "https://a.test:443", true},
		{"http://a.test:80", "http://a.test", true},
		{"http://a.test:443", "http://a.test", false},
		{"https://a.test", "http://a.test", false},
		{"https://A.test", "https://a.TEST", true},
		{"http://[::1]:80", "http://[::1]", true},
	} {
		if got := sameOrigin(c.a, c.b); got != c.same {
			t.Errorf("sameOrigin(%s, %s) = %v", c.a, c.b, got)
		}
	}
}
