package peer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"github.com/p2pxhr/p2pxhr/coordinator"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testBlock = 64 << 10

// version is one content of the origin's file.
type version struct {
	data     []byte
	etag     string
	manifest []byte
}

func newVersion(t testing.TB, data []byte, etag string) *version {
	h := protocol.NewBlockHasher(testBlock)
	h.Write(data)
	m := h.Manifest()
	m.URL, m.ETag = "/file", etag
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return &version{data: data, etag: etag, manifest: b}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// origin is an httptest origin serving /file with ranges and If-Range, and
// its manifest at the module's route; bytesPerSec > 0 throttles the file.
type origin struct {
	srv         *httptest.Server
	cur         atomic.Pointer[version]
	bytesPerSec int
	ranges      atomic.Int64 // range requests answered
	onRange     func(n int64)
	onRangeReq  func(r *http.Request)    // sees each range request answered
	coord       *coordinator.Coordinator // set by newCoordOrigin
}

// newBenchOrigin is an origin trickling at 64 KiB/s, closed with b.
func newBenchOrigin(b *testing.B, v *version) *origin {
	o := &origin{bytesPerSec: 64 << 10}
	o.cur.Store(v)
	o.srv = httptest.NewServer(o.handler())
	b.Cleanup(o.srv.Close)
	return o
}

func mustManifest(v *version) *protocol.Manifest {
	var m protocol.Manifest
	if err := json.Unmarshal(v.manifest, &m); err != nil {
		panic(err)
	}
	return &m
}

func readerAt(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func newOrigin(t *testing.T, v *version, bytesPerSec int) *origin {
	o := &origin{bytesPerSec: bytesPerSec}
	o.cur.Store(v)
	o.srv = httptest.NewServer(o.handler())
	t.Cleanup(o.srv.Close)
	return o
}

func (o *origin) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/_p2pxhr/manifest", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(o.cur.Load().manifest)
	})
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		v := o.cur.Load()
		w.Header().Set("ETag", v.etag)
		var ww http.ResponseWriter = w
		if o.bytesPerSec > 0 {
			ww = &throttled{ResponseWriter: w, rate: o.bytesPerSec, ctx: r.Context()}
		}
		http.ServeContent(ww, r, "file", time.Time{}, bytes.NewReader(v.data))
		if r.Header.Get("Range") != "" {
			if o.onRangeReq != nil {
				o.onRangeReq(r)
			}
			n := o.ranges.Add(1)
			if o.onRange != nil {
				o.onRange(n)
			}
		}
	})
	return mux
}

func (o *origin) url() string { return o.srv.URL + "/file" }

// throttled paces writes to rate bytes per second, like a loaded origin.
type throttled struct {
	http.ResponseWriter
	rate int
	ctx  context.Context
}

func (t *throttled) Write(p []byte) (int, error) {
	const chunk = 16 << 10
	n := 0
	for len(p) > 0 {
		k := min(chunk, len(p))
		select {
		case <-t.ctx.Done():
			return n, t.ctx.Err()
		case <-time.After(time.Duration(k) * time.Second / time.Duration(t.rate)):
		}
		w, err := t.ResponseWriter.Write(p[:k])
		n += w
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

func newTestClient(t *testing.T, hub *MemHub, id string, mod func(*Options)) *Client {
	t.Helper()
	opts := Options{RTC: RTCConfig{Loopback: true},
		Scheduler: SchedulerConfig{RequestTimeout: 2 * time.Second}}
	if hub != nil {
		opts.Signaller = hub.Connect(id)
	}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// seed runs c.Seed in the background until the test ends, and waits until
// it has joined the swarm.
func seed(t *testing.T, ctx context.Context, c *Client, url string, data []byte) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := c.Seed(ctx, url, bytes.NewReader(data)); err != nil {
			t.Errorf("seed: %v", err)
		}
	}()
	stop = func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	waitFor(t, ctx, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.swarms) > 0
	})
	return stop
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("condition not met: %v", ctx.Err())
		case <-tick.C:
		}
	}
}

// checkedFile is a destination that fails the test on any byte that is not
// the expected content: no wrong byte may ever be written.
type checkedFile struct {
	MemFile
	t    *testing.T
	want []byte
}

func (f *checkedFile) WriteAt(p []byte, off int64) (int, error) {
	if int(off)+len(p) > len(f.want) || !bytes.Equal(p, f.want[off:int(off)+len(p)]) {
		f.t.Errorf("wrong bytes written at %d (%d bytes)", off, len(p))
	}
	return f.MemFile.WriteAt(p, off)
}
