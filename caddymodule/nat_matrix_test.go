package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/transport/v5/vnet"

	"github.com/p2pxhr/p2pxhr/peer"
)

// natKind is one kind of network a visitor sits behind, as RFC 4787
// describes NATs: how the mapping to a public port depends on the
// destination, and which incoming packets the NAT lets through.
type natKind struct {
	name string
	nat  *vnet.NATType // nil: a public address, no NAT
}

var natKinds = []natKind{
	{"public", nil},
	{"full cone", &vnet.NATType{MappingBehavior: vnet.EndpointIndependent, FilteringBehavior: vnet.EndpointIndependent}},
	{"restricted cone", &vnet.NATType{MappingBehavior: vnet.EndpointIndependent, FilteringBehavior: vnet.EndpointAddrDependent}},
	{"port-restricted cone", &vnet.NATType{MappingBehavior: vnet.EndpointIndependent, FilteringBehavior: vnet.EndpointAddrPortDependent}},
	{"address-dependent mapping", &vnet.NATType{MappingBehavior: vnet.EndpointAddrDependent, FilteringBehavior: vnet.EndpointAddrPortDependent}},
	{"symmetric", &vnet.NATType{MappingBehavior: vnet.EndpointAddrPortDependent, FilteringBehavior: vnet.EndpointAddrPortDependent}},
}

// independentMapping: the NAT keeps one public port whatever the
// destination, so the port STUN saw is the one a peer can reach.
func (k natKind) independentMapping() bool {
	return k.nat == nil || k.nat.MappingBehavior == vnet.EndpointIndependent
}

// portFiltering: the NAT admits only the exact address and port it sent to.
func (k natKind) portFiltering() bool {
	return k.nat != nil && k.nat.FilteringBehavior == vnet.EndpointAddrPortDependent
}

// stunCanServe says whether two visitors can in principle reach each
// other with what STUN tells them (hole punching), no relay: both
// mappings independent of the destination; or one of them, if its NAT
// also admits the other's packets from a port it did not send to (the
// other side's mapping toward it is a new port nobody could learn).
func stunCanServe(a, b natKind) bool {
	switch {
	case a.independentMapping() && b.independentMapping():
		return true
	case !a.independentMapping() && !b.independentMapping():
		return false
	case a.independentMapping():
		return !a.portFiltering()
	default:
		return !b.portFiltering()
	}
}

// natWorld is a virtual Internet: the site's STUN/TURN endpoint at
// 1.2.3.4:3478, and for each pair of visitors two networks behind NATs
// of the given kinds (or public addresses).
type natWorld struct {
	wan   *vnet.Router
	ep    *iceEndpoint
	nets  [][2]*vnet.Net
	pairs [][2]natKind
}

const natServerIP = "1.2.3.4"

func newNATWorld(t *testing.T, pairs [][2]natKind, withTURN bool) *natWorld {
	t.Helper()
	w := &natWorld{pairs: pairs}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var err error
	w.wan, err = vnet.NewRouter(&vnet.RouterConfig{CIDR: "0.0.0.0/0", LoggerFactory: pionLoggerFactory{}})
	must(err)
	server, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{natServerIP}})
	must(err)
	must(w.wan.AddNet(server))
	for i, p := range pairs {
		var nets [2]*vnet.Net
		for j, k := range p {
			public := fmt.Sprintf("5.%d.%d.1", i+1, j+1)
			if k.nat == nil {
				nets[j], err = vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{public}})
				must(err)
				must(w.wan.AddNet(nets[j]))
				continue
			}
			nat := *k.nat
			lan, err := vnet.NewRouter(&vnet.RouterConfig{StaticIPs: []string{public},
				CIDR: fmt.Sprintf("10.%d.%d.0/24", i+1, j+1), NATType: &nat, LoggerFactory: pionLoggerFactory{}})
			must(err)
			nets[j], err = vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{fmt.Sprintf("10.%d.%d.2", i+1, j+1)}})
			must(err)
			must(lan.AddNet(nets[j]))
			must(w.wan.AddRouter(lan))
		}
		w.nets = append(w.nets, nets)
	}
	must(w.wan.Start())
	t.Cleanup(func() { w.wan.Stop() })
	// The very code the module runs, on the virtual network.
	w.ep, err = newICEEndpoint(server, "udp4", natServerIP+":3478", DefaultTURNRealm, nil)
	must(err)
	t.Cleanup(func() { w.ep.Destruct() })
	if withTURN {
		w.ep.register(newTurnPolicy(&TURNConfig{Listen: natServerIP + ":3478"}, nil))
	}
	return w
}

// site starts Caddy serving one file per pair, with the world's STUN (and
// TURN, with credentials the endpoint accepts) as the ICE servers the
// coordinator's welcome names. Signalling and HTTP use real loopback;
// only the peers' WebRTC traffic crosses the virtual Internet.
func (w *natWorld) site(t *testing.T, withTURN bool, fileSize int, more string) (base string, files [][]byte) {
	t.Helper()
	root := t.TempDir()
	for i := range w.pairs {
		data := randomBytes(fileSize, uint64(100+i))
		if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("f%d.bin", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, data)
	}
	ice := fmt.Sprintf(" stun off\n ice_server stun:%s:3478\n", natServerIP)
	if withTURN {
		user, pass, err := w.ep.credentials(mustAddr("5.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		ice += fmt.Sprintf(" ice_server \"turn:%s:3478?transport=udp\" %q %q\n", natServerIP, user, pass)
	}
	base = startCaddy(t, "p2pxhr {\n dashboard\n"+ice+more+"}\nroot * "+root+"\nfile_server")
	return base, files
}

// natResult is what one pair's attempt came to.
type natResult struct {
	a, b      natKind
	connected bool
	path      string
	elapsed   time.Duration
}

// tryPair has the pair's first visitor download the file and the second
// seed it; the seeder checks its copy before it joins, so it usually joins
// second and offers the connection, as the second of two seeders did
// before the coordinator stopped linking seeders to each other. It returns
// how the attempt ended (the offering side reports it: connected with a
// path, or failed after the 15 s connect timeout). The downloader's range
// requests never answer, so its attempt, not HTTP, decides when it ends.
func (w *natWorld) tryPair(t *testing.T, ctx context.Context, base string, i int, data []byte) natResult {
	res := natResult{a: w.pairs[i][0], b: w.pairs[i][1]}
	outcomes := make(chan peer.ConnectionOutcome, 4)
	url := fmt.Sprintf("%s/f%d.bin", base, i)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	downloaded := make(chan struct{})
	for j := range 2 {
		cc, err := peer.DialCoordinator(ctx, base, peer.CoordOptions{})
		if err != nil {
			t.Errorf("pair %d: %v", i, err)
			return res
		}
		c, err := peer.New(peer.Options{Signaller: cc, RTC: peer.RTCConfig{Net: w.nets[i][j]},
			HTTPClient:   &http.Client{Transport: stalledRanges{}},
			OnConnection: func(o peer.ConnectionOutcome) { outcomes <- o }})
		if err != nil {
			t.Errorf("pair %d: %v", i, err)
			return res
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			var err error
			if j == 1 {
				err = c.Seed(ctx, url, bytes.NewReader(data))
			} else {
				_, err = c.Download(ctx, url, &peer.MemFile{})
				close(downloaded)
			}
			if err != nil && ctx.Err() == nil {
				t.Errorf("pair %d: peer %d: %v", i, j, err)
			}
		}()
	}
	select {
	case o := <-outcomes:
		res.connected, res.path, res.elapsed = o.Connected, o.Path, o.Elapsed
	case <-time.After(60 * time.Second):
		t.Errorf("pair %d (%s ↔ %s): no outcome within 60 s", i, res.a.name, res.b.name)
	}
	if res.connected {
		// Let the download end through the connection rather than close
		// the pair while the answering side's channel may still be
		// opening (pion's open handler races with a close then).
		select {
		case <-downloaded:
		case <-time.After(30 * time.Second):
			t.Errorf("pair %d (%s ↔ %s): connected, but the download did not end within 30 s", i, res.a.name, res.b.name)
		}
	}
	cancel()
	wg.Wait()
	return res
}

// TestNATMatrix runs every pair of NAT kinds through the module's own
// STUN server on a virtual Internet (pion/transport's vnet), then again
// with its TURN relay. Without TURN, exactly the pairs STUN can serve in
// principle connect; with TURN, every pair does (relay where nothing else
// works). P2PXHR_NAT_MATRIX=<file> writes the table for BENCHMARKS.md.
func TestNATMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("the NAT matrix waits out the connect timeout of each pair that cannot connect")
	}
	var pairs [][2]natKind
	for i, a := range natKinds {
		for _, b := range natKinds[i:] {
			pairs = append(pairs, [2]natKind{a, b})
		}
	}
	results := map[bool][]natResult{}
	for _, withTURN := range []bool{false, true} {
		name := "stun"
		if withTURN {
			name = "stun+turn"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			w := newNATWorld(t, pairs, withTURN)
			base, files := w.site(t, withTURN, 512<<10, "")
			out := make([]natResult, len(pairs))
			// A few pairs at a time: each failing pair waits 15 s, and the
			// machine has two cores.
			sem := make(chan struct{}, 4)
			var wg sync.WaitGroup
			for i := range pairs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					out[i] = w.tryPair(t, ctx, base, i, files[i])
				}()
			}
			wg.Wait()
			for _, r := range out {
				want := withTURN || stunCanServe(r.a, r.b)
				t.Logf("%-26s ↔ %-26s connected=%-5v path=%-5s in %v", r.a.name, r.b.name, r.connected, r.path, r.elapsed.Round(time.Millisecond))
				if r.connected != want {
					t.Errorf("%s ↔ %s: connected %v, want %v", r.a.name, r.b.name, r.connected, want)
				}
				if withTURN && !stunCanServe(r.a, r.b) && r.connected && r.path != "relay" {
					t.Errorf("%s ↔ %s: connected by %s where only a relay can work", r.a.name, r.b.name, r.path)
				}
			}
			results[withTURN] = out
		})
	}
	if path := os.Getenv("P2PXHR_NAT_MATRIX"); path != "" && len(results) == 2 {
		if err := os.WriteFile(path, []byte(natMatrixTable(results[false], results[true])), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Two visitors behind symmetric NATs cannot reach each other with STUN
// alone: the download goes on over HTTP and ends about when it would have
// without peers (the server is loaded, so it first gives the neighbour the
// usual 3 s grace to connect). With TURN they meet through the relay. The
// times are logged for BENCHMARKS.md; asserted are completion, the right
// bytes, and nothing from a peer no path reaches.
func TestNATFallbackToHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a connect timeout")
	}
	sym := natKinds[len(natKinds)-1]
	const size = 2 << 20
	for _, withTURN := range []bool{false, true} {
		t.Run(map[bool]string{false: "stun", true: "stun+turn"}[withTURN], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			w := newNATWorld(t, [][2]natKind{{sym, sym}}, withTURN)
			base, files := w.site(t, withTURN, size, " http_rate_limit 1MB/s\n")
			url := base + "/f0.bin"
			download := func(sig peer.Signaller, nw *vnet.Net) peer.Result {
				t.Helper()
				c, err := peer.New(peer.Options{Signaller: sig, RTC: peer.RTCConfig{Net: nw}})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				dst := &peer.MemFile{}
				res, err := c.Download(ctx, url, dst)
				if err != nil || !bytes.Equal(dst.Bytes(), files[0]) {
					t.Fatalf("download: %v (%d bytes)", err, len(dst.Bytes()))
				}
				return res
			}
			alone := download(nil, w.nets[0][1])

			seedCtx, stopSeed := context.WithCancel(ctx)
			defer stopSeed()
			sc, err := peer.DialCoordinator(ctx, base, peer.CoordOptions{})
			if err != nil {
				t.Fatal(err)
			}
			seeder, err := peer.New(peer.Options{Signaller: sc, RTC: peer.RTCConfig{Net: w.nets[0][0]}})
			if err != nil {
				t.Fatal(err)
			}
			defer seeder.Close()
			go seeder.Seed(seedCtx, url, bytes.NewReader(files[0]))
			// The seeder's membership is what the downloader is introduced
			// to; wait until the coordinator has it.
			waitForStats(t, base, func(st statsView) bool { return st.Swarm.Members >= 1 })

			dc, err := peer.DialCoordinator(ctx, base, peer.CoordOptions{})
			if err != nil {
				t.Fatal(err)
			}
			withPeer := download(dc, w.nets[0][1])
			t.Logf("2 MiB at 1 MB/s, symmetric ↔ symmetric: HTTP alone %v; with the seeder %v (from peers %d bytes)",
				alone.Duration.Round(10*time.Millisecond), withPeer.Duration.Round(10*time.Millisecond), withPeer.BytesFromPeers)
			// With TURN, how much comes through the relay depends on how
			// soon it connects next to HTTP (TestNATMatrix asserts that it
			// does); only the figure is kept.
			if !withTURN && withPeer.BytesFromPeers != 0 {
				t.Errorf("%d bytes from a peer no path reaches", withPeer.BytesFromPeers)
			}
		})
	}
}

// statsView is the part of {prefix}dashboard/stats these tests read.
type statsView struct {
	Swarm struct {
		Members int `json:"members"`
	} `json:"swarm"`
}

// stalledRanges is an origin that never answers range requests (others
// pass): a download it serves waits for its peers.
type stalledRanges struct{}

func (stalledRanges) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Range") != "" {
		<-r.Context().Done()
		return nil, r.Context().Err()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func waitForStats(t *testing.T, base string, ok func(statsView) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := get(t, base+"/_p2pxhr/dashboard/stats")
		var st statsView
		if json.Unmarshal(body, &st) == nil && ok(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never got there: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// natMatrixTable renders both runs as one markdown table per mode.
func natMatrixTable(stun, turn []natResult) string {
	var b strings.Builder
	cell := func(r natResult) string {
		if !r.connected {
			return "no (HTTP)"
		}
		return fmt.Sprintf("%s %.2fs", r.path, r.elapsed.Seconds())
	}
	for _, mode := range []struct {
		title string
		rs    []natResult
	}{{"STUN only (the default)", stun}, {"STUN + TURN", turn}} {
		fmt.Fprintf(&b, "%s:\n\n| | %s |\n|---|", mode.title, strings.Join(natNames(), " | "))
		for range natKinds {
			b.WriteString("---|")
		}
		b.WriteString("\n")
		for _, a := range natKinds {
			fmt.Fprintf(&b, "| **%s** |", a.name)
			for _, k := range natKinds {
				for _, r := range mode.rs {
					if (r.a.name == a.name && r.b.name == k.name) || (r.b.name == a.name && r.a.name == k.name) {
						fmt.Fprintf(&b, " %s |", cell(r))
						break
					}
				}
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func natNames() []string {
	var out []string
	for _, k := range natKinds {
		out = append(out, k.name)
	}
	return out
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
