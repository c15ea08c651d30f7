package coordinator

import (
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// Short timings keep the cluster tests fast: a node is dropped 300ms
// after its last heartbeat.
const (
	testHeartbeat = 100 * time.Millisecond
	testTTL       = 300 * time.Millisecond
)

// startNATS runs an embedded nats-server on loopback; port 0 picks one.
// It is shut down at test end unless the test stops it first.
func startNATS(t testing.TB, port int) *natsserver.Server {
	t.Helper()
	if port == 0 {
		port = natsserver.RANDOM_PORT
	}
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { stopNATS(s) })
	return s
}

func stopNATS(s *natsserver.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

func natsURL(s *natsserver.Server) string { return "nats://" + s.Addr().String() }

func natsPort(s *natsserver.Server) int { return s.Addr().(*net.TCPAddr).Port }

// testNode is one coordinator with a NATS backplane behind httptest.
type testNode struct {
	c   *Coordinator
	bp  *NATSBackplane
	url string
	srv *httptest.Server
}

func startNode(t testing.TB, natsURL, id string) *testNode {
	t.Helper()
	bp, err := NewNATSBackplane(NATSOptions{URLs: []string{natsURL}, Cluster: "test", NodeID: id,
		HeartbeatInterval: testHeartbeat, HeartbeatTTL: testTTL, ReconnectWait: 50 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	// Tests and load tests dial every peer from 127.0.0.1: no per-address cap.
	c, err := New(Config{KnownSwarm: func(string) bool { return true }, Backplane: bp, Logger: testLogger(t),
		MaxConnectionsPerAddress: -1})
	if err != nil {
		bp.Close()
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	n := &testNode{c: c, bp: bp, url: "ws" + strings.TrimPrefix(srv.URL, "http"), srv: srv}
	t.Cleanup(n.stop)
	return n
}

// stop closes the coordinator (and so its backplane) and the server; it
// may be called twice.
func (n *testNode) stop() {
	n.c.Close()
	n.srv.Close()
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// waitNodes waits until every node sees exactly want nodes.
func waitNodes(t testing.TB, want int, nodes ...*testNode) {
	t.Helper()
	for _, n := range nodes {
		waitFor(t, 5*time.Second, fmt.Sprintf("node %s sees %d nodes", n.bp.NodeID(), want), func() bool {
			return len(n.bp.Nodes()) == want
		})
	}
	// Let the quiet period after the change pass, so errors are sent.
	time.Sleep(2 * testHeartbeat)
}

// swarmOwnedBy returns a swarm id that node owns among nodes.
func swarmOwnedBy(t testing.TB, node string, nodes ...string) string {
	t.Helper()
	v := newNodeView(nodes)
	for i := range 256 {
		id := strings.Repeat(fmt.Sprintf("%02x", i), 32)
		if v.owner(id) == node {
			return id
		}
	}
	t.Fatalf("no swarm owned by %s", node)
	return ""
}

// until reads messages until one satisfies ok, failing after timeout.
func (tc *testClient) until(timeout time.Duration, what string, ok func(protocol.CoordinatorMessage) bool) protocol.CoordinatorMessage {
	tc.t.Helper()
	deadline := time.Now().Add(timeout)
	var seen []string
	for {
		tc.ws.SetReadDeadline(deadline)
		_, b, err := tc.ws.ReadMessage()
		if err != nil {
			tc.t.Fatalf("waiting for %s (saw %v): %v", what, seen, err)
		}
		m, err := protocol.DecodeCoordinatorMessage(b)
		if err != nil {
			tc.t.Fatalf("server sent %s: %v", b, err)
		}
		if ok(m) {
			return m
		}
		seen = append(seen, string(b))
	}
}

// neighbour waits for an introduction to peer.
func (tc *testClient) neighbour(peer string, offer bool) {
	tc.t.Helper()
	tc.until(5*time.Second, "neighbours "+peer[:8], func(m protocol.CoordinatorMessage) bool {
		n, ok := m.(*protocol.Neighbours)
		return ok && len(n.Peers) == 1 && n.Peers[0].ID == peer && n.Peers[0].Offer == offer
	})
}

// joinIn joins swarm with a bitfield of 4 blocks.
func (tc *testClient) joinIn(swarm string, bits byte) *protocol.Neighbours {
	tc.t.Helper()
	tc.send(&protocol.Join{Swarm: swarm, Blocks: 4, Bitfield: protocol.Bitfield{bits}})
	return tc.until(5*time.Second, "the answer to a join", func(m protocol.CoordinatorMessage) bool {
		n, ok := m.(*protocol.Neighbours)
		return ok && n.Swarm == swarm
	}).(*protocol.Neighbours)
}

// testLogger logs to the test when P2PXHR_TEST_LOG is set.
func testLogger(t testing.TB) *zap.Logger {
	if os.Getenv("P2PXHR_TEST_LOG") == "" {
		return nil
	}
	return zaptest.NewLogger(t)
}
