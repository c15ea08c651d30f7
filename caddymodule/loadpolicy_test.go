package caddymodule

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/p2pxhr/p2pxhr/protocol"
)

func TestOffloadCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		line string
		want OffloadPolicy
	}{
		{"offload off", OffloadPolicy{Off: true}},
		{"offload always", OffloadPolicy{Always: true}},
		{"offload 100MB/s", OffloadPolicy{EgressRate: 100_000_000}},
		{"offload 1GiB", OffloadPolicy{EgressRate: 1 << 30}},
		{"offload in_flight 64", OffloadPolicy{InFlight: 64}},
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("p2pxhr {\n\t" + tc.line + "\n}")); err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		if h.Offload == nil || *h.Offload != tc.want {
			t.Errorf("%s: parsed %+v, want %+v", tc.line, h.Offload, tc.want)
		}
	}
	for _, tc := range []struct{ input, want, line string }{
		{"p2pxhr {\n\toffload\n}", "offload needs a policy", "Testfile:2"},
		{"p2pxhr {\n\toffload fast\n}", `offload: "fast" is not a policy; expected off, always`, "Testfile:2"},
		{"p2pxhr {\n\toffload in_flight lots\n}", `offload in_flight: "lots" is not a positive whole number`, "Testfile:2"},
		{"p2pxhr {\n\toffload in_flight\n}", "offload in_flight needs a number", "Testfile:2"},
		{"p2pxhr {\n\toffload always now\n}", `offload takes one value, got an extra "now"`, "Testfile:2"},
		{"p2pxhr {\n\toffload always\n\toffload off\n}", "offload given twice", "Testfile:3"},
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.line) {
			t.Errorf("%q: got %v, want an error containing %q at %s", tc.input, err, tc.want, tc.line)
		}
	}
	h := Handler{Offload: &OffloadPolicy{Always: true, InFlight: 3}}
	fillDefaults(&h)
	if err := h.Validate(); err == nil || !strings.Contains(err.Error(), "not several") {
		t.Errorf("two rules: %v", err)
	}
}

// clock is a settable time for the load signal's windows.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestLoadSignalPolicies(t *testing.T) {
	held := newByteLimiter(1000)
	held.lastWaited.Store(time.Now().UnixNano()) // the rate limit just held a response back
	idle := newByteLimiter(0)

	for _, tc := range []struct {
		name    string
		policy  *OffloadPolicy
		limiter *byteLimiter
		want    bool
	}{
		{"default, rate limit holding back", nil, held, true},
		{"default, no rate limit", nil, idle, false},
		{"off, rate limit holding back", &OffloadPolicy{Off: true}, held, false},
		{"always", &OffloadPolicy{Always: true}, idle, true},
		{"egress, nothing sent", &OffloadPolicy{EgressRate: 1000}, idle, false},
		{"in flight, none", &OffloadPolicy{InFlight: 2}, idle, false},
	} {
		if got := newLoadSignal(tc.policy, tc.limiter).Loaded(); got != tc.want {
			t.Errorf("%s: Loaded %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestLoadSignalEgressRate(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := newLoadSignal(&OffloadPolicy{EgressRate: 1 << 20}, newByteLimiter(0))
	l.now = c.now
	// 1.5 MiB/s for two seconds: over the rate.
	for range 8 {
		l.sent(384 << 10)
		c.advance(250 * time.Millisecond)
	}
	if !l.Loaded() {
		t.Fatal("1.5 MiB/s against a 1 MiB/s policy: not loaded")
	}
	// Quiet: the hint stays for loadedWindow after the rate was last seen
	// over, then goes.
	c.advance(loadedWindow / 2)
	if !l.Loaded() {
		t.Fatal("hint dropped before loadedWindow")
	}
	c.advance(egressWindow + loadedWindow)
	if l.Loaded() {
		t.Fatal("still loaded after a quiet window and loadedWindow")
	}
	// 0.5 MiB/s: under it.
	for range 8 {
		l.sent(128 << 10)
		c.advance(250 * time.Millisecond)
	}
	if l.Loaded() {
		t.Fatal("0.5 MiB/s against a 1 MiB/s policy: loaded")
	}
}

func TestLoadSignalInFlight(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := newLoadSignal(&OffloadPolicy{InFlight: 2}, newByteLimiter(0))
	l.now = c.now
	l.begin()
	if l.Loaded() {
		t.Fatal("1 of 2 in flight: loaded")
	}
	l.begin()
	l.end()
	l.end()
	// Two at once between two polls still count.
	if !l.Loaded() {
		t.Fatal("a burst of 2 between polls: not loaded")
	}
	c.advance(loadedWindow)
	if l.Loaded() {
		t.Fatal("loaded after loadedWindow with nothing in flight")
	}
	l.begin()
	l.begin()
	c.advance(time.Minute) // two long downloads
	if !l.Loaded() {
		t.Fatal("2 long responses in flight: not loaded")
	}
}

// recvLoad waits for a load message and returns its value.
func (p *wsPeer) recvLoad(within time.Duration) bool {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		p.conn.SetReadDeadline(deadline)
		_, b, err := p.conn.ReadMessage()
		if err != nil {
			p.t.Fatalf("no load message within %v: %v", within, err)
		}
		if m, err := protocol.DecodeCoordinatorMessage(b); err == nil {
			if l, ok := m.(*protocol.Load); ok {
				return l.Loaded
			}
		}
	}
}

// The policy's hint reaches clients through the coordinator: in the
// welcome, and as load messages when it changes.
func TestOffloadHintReachesClients(t *testing.T) {
	t.Run("always", func(t *testing.T) {
		base := startCaddy(t, "p2pxhr {\n\toffload always\n}\nmetrics /metrics\nrespond /page \"\"")
		conn, _, err := dialCoordinator(t, base, base)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		p := &wsPeer{t: t, conn: conn}
		p.send(&protocol.Hello{Version: protocol.CoordinatorVersion})
		if w, ok := p.recv().(*protocol.Welcome); !ok || !w.Loaded {
			t.Fatalf("welcome %#v, want loaded", w)
		}
		if v := metricValue(t, base, "p2pxhr_server_loaded"); v != 1 {
			t.Fatalf("p2pxhr_server_loaded = %v, want 1", v)
		}
	})

	t.Run("egress rate", func(t *testing.T) {
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "f.bin"), randomBytes(600<<10, 32), 0o644); err != nil {
			t.Fatal(err)
		}
		base := startCaddy(t, "p2pxhr {\n\toffload 100KB/s\n}\nroot * "+root+"\nfile_server")
		p := newWSPeer(t, base)
		if res, _ := get(t, base+"/f.bin"); res.StatusCode != http.StatusOK {
			t.Fatalf("GET: %s", res.Status)
		}
		// 600 KiB within the 2 s window is 300 KB/s, over 100 KB/s.
		if !p.recvLoad(10 * time.Second) {
			t.Fatal("first load message says not loaded")
		}
		if p.recvLoad(15 * time.Second) {
			t.Fatal("second load message says loaded")
		}
	})

	t.Run("in flight", func(t *testing.T) {
		// An origin that holds its responses open until released.
		release := make(chan struct{})
		body := make([]byte, 512<<10)
		origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"v1"`)
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body[:1024])
			w.(http.Flusher).Flush()
			<-release
			w.Write(body[1024:])
		}))
		defer origin.Close()
		base := startCaddy(t, "p2pxhr {\n\toffload in_flight 2\n\tinject off\n}\nreverse_proxy "+origin.URL)
		p := newWSPeer(t, base)
		var done []chan struct{}
		for range 2 {
			ch := make(chan struct{})
			done = append(done, ch)
			go func() {
				defer close(ch)
				if res, err := http.Get(base + "/big.bin"); err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			}()
		}
		if !p.recvLoad(10 * time.Second) {
			t.Fatal("first load message says not loaded")
		}
		close(release)
		for _, ch := range done {
			<-ch
		}
		if p.recvLoad(15 * time.Second) {
			t.Fatal("second load message says loaded")
		}
	})
}
