package coordinator

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// The load test: N WebSocket peers on loopback against a coordinator in a
// child process (the test binary re-executed), so the server's RSS is its
// own. Each peer says hello, joins one of benchSwarms swarms with a random
// half of 64 blocks, and sends one offer to the first peer it is told to
// offer to. Run it with, e.g.:
//
//	P2PXHR_BENCH_PEERS=1000,5000,19000 go test ./coordinator -run TestLoadPeers -v -timeout 20m
const (
	benchServerEnv = "P2PXHR_BENCH_SERVER"
	benchPeersEnv  = "P2PXHR_BENCH_PEERS"
	benchSwarms    = 8
	benchBlocks    = 64
	benchDialers   = 64
	benchTimeout   = 3 * time.Minute
)

func benchSwarmID(i int) string {
	sum := sha256.Sum256([]byte("bench-swarm-" + strconv.Itoa(i)))
	return hex.EncodeToString(sum[:])
}

// raiseNofile raises this process's open-file limit (not the system's) as
// far as it will go: the hard limit, or more when privileged.
func raiseNofile(want uint64) uint64 {
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	if lim.Max < want {
		up := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
			return want
		}
	}
	lim.Cur = min(want, lim.Max)
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Cur
}

func rssBytes() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// runBenchServer is the child process: it serves a coordinator on
// loopback, prints "ADDR host:port", answers "RSS" lines on stdin with
// "RSS <bytes> <bytes after GC> <peers>", and exits when stdin closes.
func runBenchServer() int {
	raiseNofile(65536)
	known := map[string]bool{}
	for i := 0; i < benchSwarms; i++ {
		known[benchSwarmID(i)] = true
	}
	// Every load-test client comes from 127.0.0.1: no per-address cap.
	c, err := New(Config{KnownSwarm: func(id string) bool { return known[id] }, MaxConnectionsPerAddress: -1})
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Println("ADDR", ln.Addr())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "RSS" {
			before := rssBytes()
			runtime.GC()
			debug.FreeOSMemory()
			fmt.Println("RSS", before, rssBytes(), c.Stats().Peers)
		}
	}
	srv.Close()
	c.Close()
	return 0
}

type benchServer struct {
	cmd  *exec.Cmd
	in   *bufio.Writer
	out  *bufio.Scanner
	addr string
	pipe interface{ Close() error }
}

func startBenchServer(t *testing.T) *benchServer {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), benchServerEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &benchServer{cmd: cmd, in: bufio.NewWriter(stdin), out: bufio.NewScanner(stdout), pipe: stdin}
	if !s.out.Scan() || !strings.HasPrefix(s.out.Text(), "ADDR ") {
		t.Fatalf("bench server: %q", s.out.Text())
	}
	s.addr = strings.TrimPrefix(s.out.Text(), "ADDR ")
	return s
}

// rss returns the server's RSS, its RSS after a GC, and its peer count.
func (s *benchServer) rss(t *testing.T) (int64, int64, int) {
	s.in.WriteString("RSS\n")
	s.in.Flush()
	if !s.out.Scan() {
		t.Fatal("bench server gone")
	}
	var rss, gc int64
	var peers int
	fmt.Sscanf(s.out.Text(), "RSS %d %d %d", &rss, &gc, &peers)
	return rss, gc, peers
}

func (s *benchServer) stop() {
	s.pipe.Close()
	s.cmd.Wait()
}

// latencies collects durations from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) pct(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func TestLoadPeers(t *testing.T) {
	sizes := os.Getenv(benchPeersEnv)
	if sizes == "" {
		t.Skip("set " + benchPeersEnv + "=1000,5000 to run the coordinator load test")
	}
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 || n > 30000 {
			t.Fatalf("bad peer count %q (2..30000)", f)
		}
		t.Run(strconv.Itoa(n), func(t *testing.T) { runLoad(t, n) })
	}
}

func runLoad(t *testing.T, n int) {
	raiseNofile(uint64(n) + 1024)
	srv := startBenchServer(t)
	defer srv.stop()
	base, _, _ := srv.rss(t)
	url := "ws://" + srv.addr + "/"

	var (
		match, relay            latencies
		sent, got, failed, errs atomic.Int64
		ready, done             sync.WaitGroup
		conns                   = make([]*websocket.Conn, n)
		dialers                 = make(chan struct{}, benchDialers)
		stop                    = make(chan struct{})
		start                   = time.Now()
		deadline                = start.Add(benchTimeout)
		dialer                  = websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}
	)
	ready.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer done.Done()
			readyOnce := sync.OnceFunc(ready.Done)
			defer readyOnce()
			dialers <- struct{}{}
			ws, _, err := dialer.Dial(url, nil)
			if err != nil {
				<-dialers
				if failed.Add(1) <= 3 {
					t.Logf("dial: %v", err)
				}
				return
			}
			conns[i] = ws
			ws.SetReadDeadline(deadline)
			hello, _ := protocol.EncodeCoordinatorMessage(&protocol.Hello{Version: 1})
			ws.WriteMessage(websocket.TextMessage, hello)
			if _, _, err := ws.ReadMessage(); err != nil {
				<-dialers
				failed.Add(1)
				return
			}
			rng := rand.New(rand.NewSource(int64(i)))
			bf := protocol.NewBitfield(benchBlocks)
			for b := 0; b < benchBlocks; b++ {
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
					if !answered {
						<-dialers
					}
					select {
					case <-stop:
					default:
						failed.Add(1)
					}
					return
				}
				m, err := protocol.DecodeCoordinatorMessage(b)
				if err != nil {
					continue
				}
				switch m := m.(type) {
				case *protocol.Neighbours:
					first := !answered
					if first {
						answered = true
						<-dialers
						if len(m.Peers) > 0 {
							match.add(time.Since(t0))
						}
					}
					// Offers answer the joins measured; teardown churn is not.
					if len(m.Peers) > 0 && m.Peers[0].Offer && !stopped(stop) {
						sig, _ := protocol.EncodeCoordinatorMessage(&protocol.Signal{Swarm: swarm, To: m.Peers[0].ID,
							Kind: protocol.SignalOffer, Data: "v=0 " + strconv.FormatInt(time.Now().UnixNano(), 10)})
						sent.Add(1)
						ws.WriteMessage(websocket.TextMessage, sig)
					}
					if first {
						readyOnce() // only once the offer above is counted as sent
					}
				case *protocol.Error:
					errs.Add(1)
					if errs.Load() < 5 {
						t.Logf("server error: %s %s", m.Code, m.Message)
					}
				case *protocol.Signal:
					if ns, err := strconv.ParseInt(strings.TrimPrefix(m.Data, "v=0 "), 10, 64); err == nil {
						relay.add(time.Since(time.Unix(0, ns)))
						got.Add(1)
					}
				}
			}
		}(i)
	}
	ready.Wait()
	joined := time.Since(start)
	// Let the last relays land: the counts converge within a short time.
	for settle := time.Now().Add(10 * time.Second); got.Load() < sent.Load() && time.Now().Before(settle); {
		time.Sleep(20 * time.Millisecond)
	}
	settled := time.Since(start) - joined
	rss, rssGC, peers := srv.rss(t)
	nSent, nGot, nErrs := sent.Load(), got.Load(), errs.Load()
	close(stop)
	for _, ws := range conns {
		if ws != nil {
			ws.Close()
		}
	}
	done.Wait()
	perPeer := func(r int64) float64 { return float64(r-base) / float64(max(peers, 1)) / 1024 }
	t.Logf("peers=%d held=%d failed=%d joined-in=%v server-RSS=%.1fMiB (%.1fMiB after GC) base=%.1fMiB per-peer=%.1fKiB (%.1fKiB after GC)",
		n, peers, failed.Load(), joined.Round(time.Millisecond), float64(rss)/(1<<20), float64(rssGC)/(1<<20),
		float64(base)/(1<<20), perPeer(rss), perPeer(rssGC))
	t.Logf("settled in %v; join→first-match p50=%v p99=%v (n=%d); relay p50=%v p99=%v (%d of %d relayed, %d errors)",
		settled.Round(time.Millisecond), match.pct(0.5), match.pct(0.99), len(match.d), relay.pct(0.5), relay.pct(0.99), nGot, nSent, nErrs)
	if int(failed.Load()) > n/100 {
		t.Errorf("%d of %d peers failed", failed.Load(), n)
	}
}

func stopped(stop chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}
