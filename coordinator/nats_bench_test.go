package coordinator

import (
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// The cluster benchmark: N WebSocket peers in 8 swarms, as in
// TestLoadPeers, against (memory) one coordinator with the in-memory
// backplane, (nats-local) two NATS nodes with every peer on the node that
// owns its swarm, and (nats-cross) two NATS nodes with peers alternating
// between them, so that most joins, introductions and relays cross NATS.
// Everything runs in this process (servers, embedded nats-server,
// clients), so the three are measured alike. Run it with, e.g.:
//
//	P2PXHR_BENCH_NATS_PEERS=2000,5000 go test ./coordinator -run TestNATSLatency -v -timeout 20m
const benchNATSEnv = "P2PXHR_BENCH_NATS_PEERS"

func TestNATSLatency(t *testing.T) {
	sizes := os.Getenv(benchNATSEnv)
	if sizes == "" {
		t.Skip("set " + benchNATSEnv + "=2000,5000 to run the cluster latency benchmark")
	}
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 || n > 15000 {
			t.Fatalf("bad peer count %q (2..15000)", f)
		}
		raiseNofile(uint64(2*n) + 1024)
		for _, mode := range []string{"memory", "nats-local", "nats-cross"} {
			t.Run(mode+"/"+strconv.Itoa(n), func(t *testing.T) { runClusterLoad(t, mode, n) })
		}
	}
}

// benchTargets starts the servers of one mode and returns, per swarm
// index and peer index, the URL a peer dials and the node it lands on.
func benchTargets(t *testing.T, mode string) func(swarm, i int) (string, int) {
	if mode == "memory" {
		_, url := startServer(t, Config{KnownSwarm: func(string) bool { return true }, MaxConnectionsPerAddress: -1}, nil)
		return func(int, int) (string, int) { return url, 0 }
	}
	ns := startNATS(t, 0)
	nodes := []*testNode{startNode(t, natsURL(ns), "a"), startNode(t, natsURL(ns), "b")}
	waitNodes(t, 2, nodes...)
	v := newNodeView([]string{"a", "b"})
	return func(swarm, i int) (string, int) {
		k := (i / benchSwarms) % 2 // peers of one swarm alternate between nodes
		if mode == "nats-local" {
			if v.owner(benchSwarmID(swarm)) == "b" {
				k = 1
			} else {
				k = 0
			}
		}
		return nodes[k].url, k
	}
}

func runClusterLoad(t *testing.T, mode string, n int) {
	target := benchTargets(t, mode)
	var (
		match, relaySame, relayCross latencies
		sent, got, failed            atomic.Int64
		nodeOf                       sync.Map // peer id → node index
		ready, done                  sync.WaitGroup
		dialers                      = make(chan struct{}, benchDialers)
		stop                         = make(chan struct{})
		conns                        = make([]*websocket.Conn, n)
		start                        = time.Now()
		dialer                       = websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	)
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			readyOnce := sync.OnceFunc(ready.Done)
			defer readyOnce()
			dialers <- struct{}{}
			released := false
			release := func() {
				if !released {
					released = true
					<-dialers
				}
			}
			defer release()
			url, node := target(i%benchSwarms, i)
			ws, _, err := dialer.Dial(url, nil)
			if err != nil {
				failed.Add(1)
				return
			}
			conns[i] = ws
			ws.SetReadDeadline(start.Add(benchTimeout))
			hello, _ := protocol.EncodeCoordinatorMessage(&protocol.Hello{Version: 1})
			ws.WriteMessage(websocket.TextMessage, hello)
			_, b, err := ws.ReadMessage()
			w, ok := decodeOrNil(b).(*protocol.Welcome)
			if err != nil || !ok {
				failed.Add(1)
				return
			}
			nodeOf.Store(w.Peer, node)
			rng := rand.New(rand.NewSource(int64(i)))
			bf := protocol.NewBitfield(benchBlocks)
			for b := range benchBlocks {
				if rng.Intn(2) == 0 {
					bf.Set(b)
				}
			}
			swarm := benchSwarmID(i % benchSwarms)
			join, _ := protocol.EncodeCoordinatorMessage(&protocol.Join{Swarm: swarm, Blocks: benchBlocks, Bitfield: bf})
			t0 := time.Now()
			ws.WriteMessage(websocket.TextMessage, join)
			answered := false
			for {
				_, b, err := ws.ReadMessage()
				if err != nil {
					if !stopped(stop) {
						failed.Add(1)
					}
					return
				}
				switch m := decodeOrNil(b).(type) {
				case *protocol.Neighbours:
					first := !answered
					answered = true
					release()
					if first && len(m.Peers) > 0 {
						match.add(time.Since(t0))
					}
					if len(m.Peers) > 0 && m.Peers[0].Offer && !stopped(stop) {
						sig, _ := protocol.EncodeCoordinatorMessage(&protocol.Signal{Swarm: swarm, To: m.Peers[0].ID,
							Kind: protocol.SignalOffer, Data: strconv.Itoa(node) + " " + strconv.FormatInt(time.Now().UnixNano(), 10)})
						sent.Add(1)
						ws.WriteMessage(websocket.TextMessage, sig)
					}
					if first {
						readyOnce()
					}
				case *protocol.Signal:
					from, ns, _ := strings.Cut(m.Data, " ")
					if t, err := strconv.ParseInt(ns, 10, 64); err == nil {
						d := time.Since(time.Unix(0, t))
						if from == strconv.Itoa(node) {
							relaySame.add(d)
						} else {
							relayCross.add(d)
						}
						got.Add(1)
					}
				}
			}
		}()
	}
	ready.Wait()
	joined := time.Since(start)
	for settle := time.Now().Add(10 * time.Second); got.Load() < sent.Load() && time.Now().Before(settle); {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	for _, ws := range conns {
		if ws != nil {
			ws.Close()
		}
	}
	done.Wait()
	t.Logf("%s peers=%d failed=%d joined-in=%v join→first-match p50=%v p99=%v (n=%d)",
		mode, n, failed.Load(), joined.Round(time.Millisecond), match.pct(0.5), match.pct(0.99), len(match.d))
	t.Logf("%s relay same-node p50=%v p99=%v (n=%d); cross-node p50=%v p99=%v (n=%d); %d of %d relayed",
		mode, relaySame.pct(0.5), relaySame.pct(0.99), len(relaySame.d), relayCross.pct(0.5), relayCross.pct(0.99),
		len(relayCross.d), got.Load(), sent.Load())
	if int(failed.Load()) > n/100 {
		t.Errorf("%d of %d peers failed", failed.Load(), n)
	}
}

func decodeOrNil(b []byte) protocol.CoordinatorMessage {
	m, _ := protocol.DecodeCoordinatorMessage(b)
	return m
}
