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
	"runtime/pprof"
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
// "RSS <bytes> <bytes after GC> <peers> <heap in use> <stacks in use>" and
// "CPU" lines with "CPU <seconds of CPU used so far>", and exits when stdin
// closes. P2PXHR_BENCH_HEAPPROFILE=<file> writes a heap profile at each RSS.
func runBenchServer() int {
	profile := os.Getenv("P2PXHR_BENCH_HEAPPROFILE")
	if profile != "" {
		runtime.MemProfileRate = 4096
	}
	raiseNofile(65536)
	known := map[string]bool{}
	for i := 0; i < benchSwarms; i++ {
		known[benchSwarmID(i)] = true
	}
	// The default config but for the per-address cap (every load-test
	// client comes from 127.0.0.1) and the message rate limit, which would
	// otherwise cap the relay phase (3 messages per peer before it).
	c, err := New(Config{KnownSwarm: func(id string) bool { return known[id] }, MaxConnectionsPerAddress: -1,
		MessagesPerSecond: 1 << 20, MessageBurst: 1 << 20})
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
		switch sc.Text() {
		case "RSS":
			before := rssBytes()
			runtime.GC()
			debug.FreeOSMemory()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if profile != "" {
				if f, err := os.Create(profile); err == nil {
					pprof.WriteHeapProfile(f)
					f.Close()
				}
			}
			fmt.Println("RSS", before, rssBytes(), c.Stats().Peers, ms.HeapInuse, ms.StackInuse)
		case "CPU":
			var ru syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			fmt.Println("CPU", time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Seconds())
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

// serverMemory is what the server process reports of its memory.
type serverMemory struct {
	rss, rssGC, heap, stacks int64
	peers                    int
}

// memory returns the server's RSS, its RSS after a GC, its peer count,
// and its Go heap and stacks in use after the GC.
func (s *benchServer) memory(t *testing.T) serverMemory {
	var m serverMemory
	fmt.Sscanf(s.ask(t, "RSS"), "RSS %d %d %d %d %d", &m.rss, &m.rssGC, &m.peers, &m.heap, &m.stacks)
	return m
}

// cpu returns the CPU time the server process has used.
func (s *benchServer) cpu(t *testing.T) time.Duration {
	var sec float64
	fmt.Sscanf(s.ask(t, "CPU"), "CPU %g", &sec)
	return time.Duration(sec * float64(time.Second))
}

func (s *benchServer) ask(t *testing.T, q string) string {
	s.in.WriteString(q + "\n")
	s.in.Flush()
	if !s.out.Scan() {
		t.Fatal("bench server gone")
	}
	return s.out.Text()
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

// relayPhase is how long the load test relays signals as fast as the
// server can (after the memory is measured), to measure relayed messages
// per second and per second of the server's CPU.
const (
	relayPhase  = 5 * time.Second
	relayWindow = 4 // signals each offering peer keeps in flight
)

// benchPeer is one client of the load test; its writes come from its
// reader goroutine and, once, from the relay phase's start.
type benchPeer struct {
	ws      *websocket.Conn
	mu      sync.Mutex
	swarm   string
	partner string // the peer it offered to
}

func (p *benchPeer) send(m protocol.CoordinatorMessage) {
	b, _ := protocol.EncodeCoordinatorMessage(m)
	p.mu.Lock()
	p.ws.WriteMessage(websocket.TextMessage, b)
	p.mu.Unlock()
}

// relaySignal is the candidate the relay phase bounces between partners.
func relaySignal(swarm, to string) *protocol.Signal {
	return &protocol.Signal{Swarm: swarm, To: to, Kind: protocol.SignalCandidate, Mid: "0",
		Data: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host"}
}

func runLoad(t *testing.T, n int) {
	raiseNofile(uint64(n) + 1024)
	srv := startBenchServer(t)
	defer srv.stop()
	base := srv.memory(t).rss
	url := "ws://" + srv.addr + "/"

	var (
		match, relay            latencies
		sent, got, failed, errs atomic.Int64
		bounced                 atomic.Int64
		relaying                atomic.Bool
		ready, done             sync.WaitGroup
		peers                   = make([]*benchPeer, n)
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
			p := &benchPeer{ws: ws, swarm: benchSwarmID(i % benchSwarms)}
			ws.SetReadDeadline(deadline)
			p.send(&protocol.Hello{Version: 1})
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
			t0 := time.Now()
			p.send(&protocol.Join{Swarm: p.swarm, Blocks: benchBlocks, Bitfield: bf})
			peers[i] = p
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
					if len(m.Peers) > 0 && m.Peers[0].Offer && !stopped(stop) && p.partner == "" {
						p.mu.Lock()
						p.partner = m.Peers[0].ID
						p.mu.Unlock()
						sent.Add(1)
						p.send(&protocol.Signal{Swarm: p.swarm, To: m.Peers[0].ID,
							Kind: protocol.SignalOffer, Data: "v=0 " + strconv.FormatInt(time.Now().UnixNano(), 10)})
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
					if m.Kind == protocol.SignalCandidate {
						bounced.Add(1)
						if relaying.Load() {
							p.send(relaySignal(p.swarm, m.From))
						}
					} else if ns, err := strconv.ParseInt(strings.TrimPrefix(m.Data, "v=0 "), 10, 64); err == nil {
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
	mem := srv.memory(t)
	nSent, nGot, nErrs := sent.Load(), got.Load(), errs.Load()

	// Relay phase: every offering peer bounces relayWindow signals off its
	// partner, which answers each at once, until the phase ends.
	cpu0, t1 := srv.cpu(t), time.Now()
	relaying.Store(true)
	for _, p := range peers {
		if p == nil {
			continue
		}
		p.mu.Lock()
		partner := p.partner
		p.mu.Unlock()
		for range relayWindow {
			if partner != "" {
				p.send(relaySignal(p.swarm, partner))
			}
		}
	}
	time.Sleep(relayPhase)
	relaying.Store(false)
	relayed, cpu, elapsed := bounced.Load(), srv.cpu(t)-cpu0, time.Since(t1)

	close(stop)
	for _, p := range peers {
		if p != nil {
			p.ws.Close()
		}
	}
	done.Wait()
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	perPeer := func(r int64) float64 { return float64(r-base) / float64(max(mem.peers, 1)) / 1024 }
	t.Logf("peers=%d held=%d failed=%d joined-in=%v server-RSS=%.1fMiB (%.1fMiB after GC: heap %.1fMiB, stacks %.1fMiB) base=%.1fMiB per-peer=%.1fKiB (%.1fKiB after GC)",
		n, mem.peers, failed.Load(), joined.Round(time.Millisecond), mib(mem.rss), mib(mem.rssGC), mib(mem.heap), mib(mem.stacks),
		mib(base), perPeer(mem.rss), perPeer(mem.rssGC))
	t.Logf("settled in %v; join→first-match p50=%v p99=%v (n=%d); relay p50=%v p99=%v (%d of %d relayed, %d errors)",
		settled.Round(time.Millisecond), match.pct(0.5), match.pct(0.99), len(match.d), relay.pct(0.5), relay.pct(0.99), nGot, nSent, nErrs)
	t.Logf("relay phase: %d signals relayed in %v = %.0f/s, server CPU %v = %.0f relayed per CPU-second",
		relayed, elapsed.Round(time.Millisecond), float64(relayed)/elapsed.Seconds(), cpu.Round(time.Millisecond), float64(relayed)/cpu.Seconds())
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
