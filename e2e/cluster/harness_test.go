package cluster

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/p2pxhr/p2pxhr/coordinator"
	"github.com/p2pxhr/p2pxhr/peer"
)

// Backplane timings of every node: a node is dropped 1.5s after its last
// heartbeat. Short enough for quick tests, long enough that a loaded
// 2-core CI machine (heartbeats seen up to 370ms late) never drops a live
// node.
const (
	heartbeat = 250 * time.Millisecond
	ttl       = 1500 * time.Millisecond
)

// fileSize is the size of every demo file the nodes serve.
const fileSize = 4 << 20

// ---- NATS ----

// startNATS runs an embedded nats-server on loopback; port 0 picks a free
// one. It is shut down at test end unless the test stops it first.
func startNATS(t *testing.T, port int) *natsserver.Server {
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
		s.Shutdown()
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { stopNATS(s) })
	return s
}

func stopNATS(s *natsserver.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

func natsPort(s *natsserver.Server) int { return s.Addr().(*net.TCPAddr).Port }

// ---- nodes ----

// nodeOptions shape a node's site.
type nodeOptions struct {
	rateLimit string   // http_rate_limit; "" for none
	seeds     []uint64 // besides /files/demo.bin (seed 1): /s<seed>/demo.bin
	pages     string   // a directory served at / (HTML gets the client tag)
}

// node is one Caddy node: a `p2pxhr run` subprocess.
type node struct {
	name string
	base string // http://127.0.0.1:<port>
	dir  string
	log  string // the process's stdout and stderr
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been reaped
	err  error         // Wait's result, once done

	mu sync.Mutex
	id string // the backplane's node id, from stats
}

// caddyfile is a node's config: a throttled origin of deterministic demo
// files behind the p2pxhr module with the NATS backplane.
func caddyfile(n *node, port, nats int, o nodeOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\tadmin off\n\tauto_https off\n\tpersist_config off\n\tgrace_period 250ms\n")
	fmt.Fprintf(&b, "\tstorage file_system %s\n", filepath.Join(n.dir, "data"))
	fmt.Fprintf(&b, "\tlog {\n\t\toutput stderr\n\t\tlevel INFO\n\t}\n}\n\n")
	fmt.Fprintf(&b, "http://127.0.0.1:%d {\n\troute {\n\t\tp2pxhr {\n\t\t\tdashboard\n", port)
	if o.rateLimit != "" {
		fmt.Fprintf(&b, "\t\t\thttp_rate_limit %s\n", o.rateLimit)
	}
	fmt.Fprintf(&b, "\t\t\tbackplane nats nats://127.0.0.1:%d {\n\t\t\t\tcluster e2e\n\t\t\t\tnode %s\n\t\t\t\theartbeat %v %v\n\t\t\t}\n\t\t}\n",
		nats, n.name, heartbeat, ttl)
	fmt.Fprintf(&b, "\t\thandle /files/* {\n\t\t\tp2pxhr_demo_files {\n\t\t\t\tsize %d\n\t\t\t}\n\t\t}\n", fileSize)
	for _, s := range o.seeds {
		fmt.Fprintf(&b, "\t\thandle /s%d/* {\n\t\t\tp2pxhr_demo_files {\n\t\t\t\tsize %d\n\t\t\t\tseed %d\n\t\t\t}\n\t\t}\n", s, fileSize, s)
	}
	if o.pages != "" {
		fmt.Fprintf(&b, "\t\thandle {\n\t\t\troot * %s\n\t\t\tfile_server\n\t\t}\n", o.pages)
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// launch starts a node's process; waitReady waits for it to serve.
func launch(t *testing.T, name string, nats int, o nodeOptions) *node {
	t.Helper()
	n := &node{name: name, dir: t.TempDir(), done: make(chan struct{})}
	port := freePort(t)
	n.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	n.log = filepath.Join(n.dir, "node.log")
	cfg := filepath.Join(n.dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(caddyfile(n, port, nats, o)), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(n.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	n.cmd = exec.Command(nodeBinary, "run", "--config", cfg, "--adapter", "caddyfile")
	n.cmd.Dir = n.dir
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	n.cmd.SysProcAttr = childAttr()
	n.cmd.Env = append(os.Environ(), "HOME="+n.dir, "XDG_DATA_HOME="+filepath.Join(n.dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(n.dir, "config"))
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	track(n.cmd.Process)
	go func() {
		n.err = n.cmd.Wait()
		untrack(n.cmd.Process)
		close(n.done)
	}()
	t.Cleanup(func() { n.stop(t) })
	return n
}

// waitReady polls the node's stats route until it answers.
func (n *node) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-n.done:
			t.Fatalf("node %s exited before serving: %v\n%s", n.name, n.err, n.logText())
		default:
		}
		if s, err := n.statsErr(); err == nil {
			n.mu.Lock()
			n.id = s.Node
			n.mu.Unlock()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not serving after 30s\n%s", n.name, n.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ID is the node's backplane id (its configured name plus a suffix).
func (n *node) ID() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.id
}

// kill ends the node at once, as a crash would: no goodbye on NATS.
func (n *node) kill(t *testing.T) {
	t.Helper()
	n.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("node %s did not die", n.name)
	}
}

// stop ends the node gracefully (SIGTERM, then SIGKILL after 5s), checks
// its log for data races, and prints the log if the test failed.
func (n *node) stop(t *testing.T) {
	select {
	case <-n.done:
	default:
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(5 * time.Second):
			t.Errorf("node %s ignored SIGTERM for 5s; killing it", n.name)
			n.cmd.Process.Signal(syscall.SIGKILL)
			<-n.done
		}
	}
	text := n.logText()
	if strings.Contains(text, "WARNING: DATA RACE") {
		t.Errorf("node %s reported a data race", n.name)
	}
	if t.Failed() || os.Getenv("P2PXHR_TEST_LOG") != "" {
		t.Logf("---- log of node %s (%s, exit: %v) ----\n%s", n.name, n.ID(), n.err, text)
	} else if warn := warnings(text); len(warn) > 0 {
		t.Logf("node %s logged %d unexpected warnings or errors:\n%s", n.name, len(warn), strings.Join(warn[:min(len(warn), 10)], "\n"))
	}
}

// benign are warnings every node logs with this config, or when the test
// stops NATS.
var benign = []string{
	`"msg":"admin endpoint disabled"`,
	`"msg":"HTTP/2 skipped because it requires TLS"`,
	`"msg":"HTTP/3 skipped because it requires TLS"`,
	`"msg":"exiting; byeee!! 👋"`,
	`"msg":"NATS backplane disconnected: serving this node's peers alone"`,
	`graceful shutdown`, // keep-alive connections outlasting grace_period
}

// warnings are the log lines at level warn or above but the benign ones.
func warnings(log string) []string {
	var out []string
next:
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, `"level":"warn"`) && !strings.Contains(l, `"level":"error"`) &&
			!strings.Contains(l, `"level":"fatal"`) && !strings.Contains(l, `"level":"panic"`) {
			continue
		}
		for _, b := range benign {
			if strings.Contains(l, b) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// logText is the node's log, its last 64 KiB if longer.
func (n *node) logText() string {
	b, err := os.ReadFile(n.log)
	if err != nil {
		return err.Error()
	}
	if len(b) > 64<<10 {
		b = append([]byte("[...]\n"), b[len(b)-64<<10:]...)
	}
	return string(b)
}

// statsErr is the coordinator part of the node's {prefix}dashboard/stats.
func (n *node) statsErr() (coordinator.Stats, error) {
	var r struct {
		Swarm coordinator.Stats `json:"swarm"`
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(n.base + "/_p2pxhr/dashboard/stats")
	if err != nil {
		return r.Swarm, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return r.Swarm, fmt.Errorf("stats: HTTP %d", resp.StatusCode)
	}
	err = json.NewDecoder(resp.Body).Decode(&r)
	return r.Swarm, err
}

func (n *node) stats(t *testing.T) coordinator.Stats {
	t.Helper()
	s, err := n.statsErr()
	if err != nil {
		t.Fatalf("node %s: %v", n.name, err)
	}
	return s
}

// localMembers is the swarm memberships of the node's own connections.
func (n *node) localMembers(t *testing.T) int {
	t.Helper()
	s := n.stats(t)
	return s.Nodes[s.Node].Members
}

// manifestID builds (on that node) the manifest of path and returns its
// swarm id.
func (n *node) manifestID(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(n.base + "/_p2pxhr/manifest?url=" + url.QueryEscape(path))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		ID    string `json:"id"`
		Size  int64  `json:"size"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 || m.ID == "" {
		t.Fatalf("node %s: manifest of %s: HTTP %d, %v %q", n.name, path, resp.StatusCode, err, m.Error)
	}
	if m.Size != fileSize {
		t.Fatalf("node %s: manifest of %s says %d bytes, want %d", n.name, path, m.Size, fileSize)
	}
	return m.ID
}

// cluster is a NATS server and two nodes sharing swarms through it.
type cluster struct {
	nats *natsserver.Server
	port int // NATS port
	a, b *node
}

// startCluster starts NATS and nodes a and b, and waits until each sees
// the other.
func startCluster(t *testing.T, o nodeOptions) *cluster {
	t.Helper()
	c := &cluster{nats: startNATS(t, 0)}
	c.port = natsPort(c.nats)
	c.a = launch(t, "a", c.port, o)
	c.b = launch(t, "b", c.port, o)
	c.a.waitReady(t)
	c.b.waitReady(t)
	waitNodes(t, 2, 10*time.Second, c.a, c.b)
	return c
}

// waitNodes waits until each node sees want live nodes, and returns how
// long that took.
func waitNodes(t *testing.T, want int, d time.Duration, nodes ...*node) time.Duration {
	t.Helper()
	start := time.Now()
	for _, n := range nodes {
		waitFor(t, d, fmt.Sprintf("node %s to see %d nodes", n.name, want), func() bool {
			s, err := n.statsErr()
			return err == nil && len(s.Nodes) == want
		})
	}
	return time.Since(start)
}

// waitFor polls cond every 20ms for at most d and returns how long it took.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// owner is the node owning swarm among nodes, by the rendezvous hashing
// of docs/PROTOCOL.md §5.1 (reimplemented from the text, not the code).
func owner(swarm string, nodes ...string) string {
	best, bestScore := "", uint64(0)
	for _, n := range nodes {
		h := fnv.New64a()
		h.Write([]byte(n + "\x00" + swarm))
		x := h.Sum64()
		x ^= x >> 30
		x *= 0xbf58476d1ce4e5b9
		x ^= x >> 27
		x *= 0x94d049bb133111eb
		x ^= x >> 31
		if best == "" || x > bestScore {
			best, bestScore = n, x
		}
	}
	return best
}

// ---- content ----

// demoContent is what p2pxhr_demo_files serves as demo.bin for seed: the
// AES-128-CTR keystream under the key seed (big-endian, zero padded),
// counter from zero.
func demoContent(seed uint64) []byte {
	var key [16]byte
	binary.BigEndian.PutUint64(key[:], seed)
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err)
	}
	out := make([]byte, fileSize)
	cipher.NewCTR(block, make([]byte, aes.BlockSize)).XORKeyStream(out, out)
	return out
}

// memFile is an io.WriterAt for a download; each write waits delay
// first, one at a time, to play a slow disk.
type memFile struct {
	delay time.Duration
	mu    sync.Mutex
	b     []byte
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	time.Sleep(m.delay)
	if n := int(off) + len(p); n > len(m.b) {
		m.b = append(m.b, make([]byte, n-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) equal(want []byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Equal(m.b, want)
}

// ---- Go peers ----

// goPeer starts a Go peer on loopback that meets others through the
// coordinator of base. Its connection log is printed if the test fails.
func goPeer(t *testing.T, name, base string, progress func(peer.Progress)) *peer.Client {
	t.Helper()
	var mu sync.Mutex
	var lines []string
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("---- Go peer %s (%s) ----\n%s", name, base, strings.Join(lines, "\n"))
			mu.Unlock()
		}
	})
	logf := func(format string, args ...any) {
		mu.Lock()
		lines = append(lines, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	sig, err := peer.NewCoordClient(base, peer.CoordOptions{Logf: logf, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c, err := peer.New(peer.Options{Signaller: sig, RTC: peer.RTCConfig{Loopback: true}, Progress: progress})
	if err != nil {
		sig.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// seed makes c seed data as resource until the test ends; an early end of
// Seed fails the test.
func seed(t *testing.T, c *peer.Client, resource string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Seed(ctx, resource, bytes.NewReader(data)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("seeding %s: %v", resource, err)
		}
	})
}

// download fetches resource with c into memory and checks it against want.
func download(t *testing.T, ctx context.Context, c *peer.Client, resource string, want []byte) peer.Result {
	t.Helper()
	var out memFile
	res, err := c.Download(ctx, resource, &out)
	if err != nil {
		t.Fatalf("downloading %s: %v", resource, err)
	}
	if !out.equal(want) {
		t.Fatalf("downloading %s: the bytes differ from the origin's", resource)
	}
	return res
}
