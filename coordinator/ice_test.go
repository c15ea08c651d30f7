package coordinator

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// The welcome carries the ICE servers Config.ICEServers makes for the
// connection's request, so every client learns them however it was loaded.
func TestWelcomeCarriesICEServers(t *testing.T) {
	_, url := startServer(t, Config{ICEServers: func(r *http.Request) []protocol.ICEServer {
		return []protocol.ICEServer{{URLs: []string{"stun:" + r.Host}}}
	}}, nil)
	ws, _, err := dialRaw(t, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc := &testClient{t: t, ws: ws}
	tc.send(&protocol.Hello{Version: protocol.CoordinatorVersion})
	w, ok := tc.read().(*protocol.Welcome)
	if !ok {
		t.Fatalf("no welcome: %#v", w)
	}
	host := url[len("ws://"):]
	if want := []protocol.ICEServer{{URLs: []string{"stun:" + host}}}; !reflect.DeepEqual(w.ICEServers, want) {
		t.Fatalf("welcome ICE servers %+v, want %+v", w.ICEServers, want)
	}

	// Without the callback the list is there, empty.
	_, url2 := startServer(t, Config{}, nil)
	ws2, _, err := dialRaw(t, url2, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc2 := &testClient{t: t, ws: ws2}
	tc2.send(&protocol.Hello{Version: protocol.CoordinatorVersion})
	if w2, ok := tc2.read().(*protocol.Welcome); !ok || w2.ICEServers == nil || len(w2.ICEServers) != 0 {
		t.Fatalf("welcome without ICE servers: %#v", w2)
	}
}

// Connection reports are counted by result and path, only from members of
// the swarm named.
func TestConnectionReportsCounted(t *testing.T) {
	coord, url := startServer(t, Config{}, nil)
	a := dial(t, url)
	b := dial(t, url)
	a.send(&protocol.Connection{Swarm: testSwarm, Peer: b.id, Result: protocol.ConnectionFailed})
	a.wantError(protocol.ErrCodeNotJoined)
	a.join(testSwarm)
	a.send(&protocol.Connection{Swarm: testSwarm, Peer: b.id, Result: protocol.ConnectionConnected, Path: protocol.PathSrflx})
	a.send(&protocol.Connection{Swarm: testSwarm, Peer: b.id, Result: protocol.ConnectionConnected, Path: protocol.PathRelay})
	a.send(&protocol.Connection{Swarm: testSwarm, Peer: b.id, Result: protocol.ConnectionConnected, Path: protocol.PathSrflx})
	a.send(&protocol.Connection{Swarm: testSwarm, Peer: b.id, Result: protocol.ConnectionFailed})
	want := ConnectionStats{Connected: map[string]int64{"srflx": 2, "relay": 1}, Failed: 1}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := coord.Stats().Connections
		if reflect.DeepEqual(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections %+v, want %+v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := want.SuccessRate(); r != 0.75 {
		t.Fatalf("success rate %v, want 0.75", r)
	}
	if r := (ConnectionStats{}).SuccessRate(); r != -1 {
		t.Fatalf("success rate of nothing %v, want -1", r)
	}
}
