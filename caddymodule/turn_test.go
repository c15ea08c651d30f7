package caddymodule

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// turnClient allocates a relay at the TURN server of srv with its
// credentials, as a browser given that ICE server does.
func turnClient(t *testing.T, addr string, srv protocol.ICEServer) (*turn.Client, net.PacketConn, error) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: srv.Username, Password: srv.Credential, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err == nil {
		t.Cleanup(func() { relay.Close() })
	}
	return c, relay, err
}

// echoPeer answers every datagram with the same bytes: the far side of a
// relayed connection.
func echoPeer(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	return pc
}

// roundTrip sends one datagram through the relay to the echo peer and
// waits for it to come back; false if it never does.
func roundTrip(t *testing.T, relay net.PacketConn, peer net.Addr, payload []byte) bool {
	t.Helper()
	buf := make([]byte, 1500)
	for range 3 { // permissions are created on the first send
		if _, err := relay.WriteTo(payload, peer); err != nil {
			t.Fatalf("relay write: %v", err)
		}
		relay.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, _, err := relay.ReadFrom(buf)
		if err == nil && bytes.Equal(buf[:n], payload) {
			return true
		}
	}
	return false
}

// With turn configured, the welcome carries TURN with credentials made for
// the visitor; they allocate a relay that carries datagrams both ways, the
// bytes are counted as server bytes in stats and metrics, and a visitor
// over its quota is cut off.
func TestTURNRelaysWithWelcomeCredentialsAndCounts(t *testing.T) {
	port := freeUDPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	base := startCaddy(t, fmt.Sprintf("metrics /metrics\np2pxhr {\n dashboard\n stun off\n turn {\n  listen %s\n  realm test.example\n  quota 16KiB\n }\n}\nrespond / \"site\"", addr))
	if st := iceStats(t, base); st.TURN != "udp "+addr {
		t.Fatalf("stats ice %+v", st)
	}
	ice := welcomeICE(t, base)
	if len(ice) != 1 || ice[0].URLs[0] != "turn:"+addr+"?transport=udp" || ice[0].Username == "" || ice[0].Credential == "" {
		t.Fatalf("welcome ICE servers %+v, want TURN with credentials", ice)
	}
	expiry, _, ok := strings.Cut(ice[0].Username, ":")
	sec, err := strconv.ParseInt(expiry, 10, 64)
	if !ok || err != nil {
		t.Fatalf("username %q is not <expiry>:<visitor>", ice[0].Username)
	}
	if left := time.Until(time.Unix(sec, 0)); left < 11*time.Hour || left > 13*time.Hour {
		t.Errorf("credentials expire in %v, want about 12h", left)
	}

	// Wrong credentials get no relay.
	bad := ice[0]
	bad.Credential = "AAAA" + bad.Credential[4:]
	if _, _, err := turnClient(t, addr, bad); err == nil {
		t.Fatal("allocated with a wrong credential")
	}

	_, relay, err := turnClient(t, addr, ice[0])
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	peer := echoPeer(t)
	payload := bytes.Repeat([]byte("p2pxhr"), 100) // 600 bytes
	if !roundTrip(t, relay, peer.LocalAddr(), payload) {
		t.Fatal("no datagram came back through the relay")
	}
	st := iceStats(t, base)
	if st.RelayedBytes < 2*int64(len(payload)) || st.Allocations != 1 {
		t.Fatalf("stats ice %+v, want at least %d relayed bytes and one allocation", st, 2*len(payload))
	}
	if got := metricValue(t, base, "p2pxhr_relay_bytes_total"); got != float64(st.RelayedBytes) {
		t.Errorf("p2pxhr_relay_bytes_total %v, stats %d", got, st.RelayedBytes)
	}

	// 16 KiB of quota: keep relaying until it is used up, then nothing
	// more comes back.
	cutOff := false
	for range 40 {
		if !roundTrip(t, relay, peer.LocalAddr(), payload) {
			cutOff = true
			break
		}
	}
	if !cutOff {
		t.Fatal("the relay kept going past the visitor's 16 KiB quota")
	}
	if st := iceStats(t, base); st.RelayedBytes > 16<<10+2*int64(len(payload)) {
		t.Errorf("relayed %d bytes with a 16 KiB quota", st.RelayedBytes)
	}
	// The same visitor cannot get a new relay today.
	if _, _, err := turnClient(t, addr, welcomeICE(t, base)[0]); err == nil {
		t.Error("a visitor over quota got a new relay")
	}
}

// Without turn, the STUN listener refuses allocations: it relays nothing
// even for a client that guesses the credential scheme.
func TestSTUNListenerRefusesAllocations(t *testing.T) {
	port := freeUDPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startCaddy(t, fmt.Sprintf("p2pxhr {\n stun %s\n}\nrespond \"site\"", addr))
	ep, ok := pooledEndpoint("udp/" + addr)
	if !ok {
		t.Fatal("no endpoint")
	}
	user, pass, err := turn.GenerateLongTermTURNRESTCredentials(ep.secret, "x", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := turnClient(t, addr, protocol.ICEServer{Username: user, Credential: pass}); err == nil {
		t.Fatal("a STUN-only listener allocated a relay")
	}
}

// Connection reports reach Caddy's metrics, every path exported from the
// start.
func TestPeerConnectionsMetric(t *testing.T) {
	base, m := shareableSiteWith(t, "metrics /metrics")
	if v := metricValue(t, base, `p2pxhr_peer_connections_total{path="relay",result="connected"}`); v != 0 {
		t.Fatalf("relay before any report: %v", v)
	}
	a := newWSPeer(t, base)
	b := newWSPeer(t, base)
	a.send(&protocol.Join{Swarm: m.ID, Blocks: len(m.Blocks), Bitfield: protocol.NewBitfield(len(m.Blocks))})
	a.recvType(protocol.TypeNeighbours)
	a.send(&protocol.Connection{Swarm: m.ID, Peer: b.id, Result: protocol.ConnectionConnected, Path: protocol.PathSrflx})
	a.send(&protocol.Connection{Swarm: m.ID, Peer: b.id, Result: protocol.ConnectionFailed})
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok := metricValue(t, base, `p2pxhr_peer_connections_total{path="srflx",result="connected"}`) == 1 &&
			metricValue(t, base, `p2pxhr_peer_connections_total{path="",result="failed"}`) == 1
		if ok {
			break
		}
		if time.Now().After(deadline) {
			_, body := get(t, base+"/metrics")
			t.Fatalf("metrics lack the reports:\n%s", grepLines(body, "peer_connections"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func grepLines(body []byte, sub string) string {
	var out []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
