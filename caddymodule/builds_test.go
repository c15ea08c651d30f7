package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// heldOrigin sends the first 64 KiB of a body, then holds the rest until
// released (or until its request is cancelled, which it records).
type heldOrigin struct {
	data      []byte
	started   chan struct{}
	release   chan struct{}
	freed     sync.Once
	requests  atomic.Int32
	cancelled atomic.Int32
}

// free releases every held response; a test defers it so that a failure
// does not leave Caddy's shutdown waiting for them.
func (o *heldOrigin) free() { o.freed.Do(func() { close(o.release) }) }

func newHeldOrigin(data []byte) *heldOrigin {
	return &heldOrigin{data: data, started: make(chan struct{}, 16), release: make(chan struct{})}
}

func (o *heldOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.requests.Add(1)
	w.Header().Set("ETag", `"held-1"`)
	w.Header().Set("Content-Length", fmt.Sprint(len(o.data)))
	half := min(len(o.data), 64<<10)
	w.Write(o.data[:half])
	w.(http.Flusher).Flush()
	select {
	case o.started <- struct{}{}:
	default:
	}
	select {
	case <-o.release:
		w.Write(o.data[half:])
	case <-r.Context().Done():
		o.cancelled.Add(1)
	}
}

// startCaddyLogged is startCaddy with Caddy's logs written to a file,
// whose path it returns with the base URL.
func startCaddyLogged(t *testing.T, siteBody string) (base, logFile string) {
	t.Helper()
	logFile = filepath.Join(t.TempDir(), "caddy.log")
	base = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf("{\n\tadmin off\n\tauto_https off\n\tpersist_config off\n\tlog {\n\t\toutput file %s\n\t\tlevel DEBUG\n\t}\n}\n%s {\n%s\n}\n",
		logFile, base, siteBody)
	return startCaddyfile(t, cfg, base), logFile
}

// waitMetric polls /metrics until series has the value want.
func waitMetric(t *testing.T, base, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for metricValue(t, base, series) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed at %v, want %v", series, metricValue(t, base, series), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// manifestAsync requests a manifest with ctx and delivers the outcome.
func manifestAsync(ctx context.Context, base, url string) <-chan *protocol.Manifest {
	out := make(chan *protocol.Manifest, 1)
	go func() {
		var m *protocol.Manifest
		defer func() { out <- m }()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/_p2pxhr/manifest?url="+url, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer res.Body.Close()
		if res.StatusCode == http.StatusOK {
			m = new(protocol.Manifest)
			if json.NewDecoder(res.Body).Decode(m) != nil {
				m = nil
			}
		}
	}()
	return out
}

func TestFirstRequesterLeavingKeepsTheBuildForOthers(t *testing.T) {
	data := randomBytes(1<<20, 61)
	origin := newHeldOrigin(data)
	upstream := httptest.NewServer(origin)
	defer upstream.Close()
	defer origin.free()
	base, logFile := startCaddyLogged(t, "p2pxhr\nmetrics /metrics\nreverse_proxy "+upstream.URL)

	ctxA, leaveA := context.WithCancel(context.Background())
	gotA := manifestAsync(ctxA, base, "/f.bin")
	<-origin.started
	gotB := manifestAsync(context.Background(), base, "/f.bin")
	waitMetric(t, base, "p2pxhr_manifest_build_waiters", 2)
	leaveA()
	<-gotA
	waitMetric(t, base, "p2pxhr_manifest_build_waiters", 1)
	origin.free()

	m := <-gotB
	if m == nil {
		t.Fatal("the second requester got no manifest after the first one left")
	}
	if want := independentHashes(data, protocol.DefaultBlockSize); m.Blocks[0] != want[0] || len(m.Blocks) != len(want) {
		t.Fatalf("manifest of the wrong bytes")
	}
	if n := origin.requests.Load(); n != 1 {
		t.Errorf("the origin was asked %d times; the two requesters should share one build", n)
	}
	logs, _ := os.ReadFile(logFile)
	if strings.Contains(string(logs), "panic") || strings.Contains(string(logs), "goroutine ") {
		t.Errorf("a requester going away left a panic in the logs:\n%s", logs)
	}
}

func TestBuildStopsWhenEveryRequesterHasLeft(t *testing.T) {
	origin := newHeldOrigin(randomBytes(1<<20, 62))
	upstream := httptest.NewServer(origin)
	defer upstream.Close()
	defer origin.free()
	base, logFile := startCaddyLogged(t, "p2pxhr\nmetrics /metrics\nreverse_proxy "+upstream.URL)

	ctx, leave := context.WithCancel(context.Background())
	got := manifestAsync(ctx, base, "/f.bin")
	<-origin.started
	leave()
	<-got
	// The origin's request is cancelled: nobody waits for the bytes.
	deadline := time.Now().Add(20 * time.Second)
	for origin.cancelled.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the build went on after its only requester left")
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitMetric(t, base, `p2pxhr_manifest_requests_total{result="abandoned"}`, 1)
	// A later request builds afresh and succeeds.
	origin.free()
	if m := <-manifestAsync(context.Background(), base, "/f.bin"); m == nil {
		t.Fatal("no manifest after an abandoned build")
	}
	logs, _ := os.ReadFile(logFile)
	if strings.Contains(string(logs), "panic") || strings.Contains(string(logs), "goroutine ") {
		t.Errorf("a requester going away left a panic in the logs:\n%s", logs)
	}
}

// file_server copies a file without looking at the request's context; the
// build's writer must stop it once the build is abandoned.
func TestBuildWriterStopsOnceAbandoned(t *testing.T) {
	h := &Handler{BlockSize: protocol.DefaultBlockSize, MaxSize: 1 << 30}
	fillDefaults(h)
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/f.bin", nil)
	bw := newBuildWriter(h, req)
	bw.Header().Set("ETag", `"x"`)
	if _, err := bw.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := bw.Write(make([]byte, 1000)); err == nil || !bw.stopped() {
		t.Fatalf("write after the build was abandoned: %v, stopped %v", err, bw.stopped())
	}
}

// neverNotModified ignores conditional requests: every GET streams the
// whole body, under validators that change only with the bytes.
type neverNotModified struct {
	data     atomic.Pointer[[]byte]
	version  atomic.Int32
	withETag bool
}

func (o *neverNotModified) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data := *o.data.Load()
	if o.withETag {
		w.Header().Set("ETag", fmt.Sprintf(`"v%d"`, o.version.Load()))
	}
	w.Header().Set("Last-Modified", time.Date(2026, 1, 1, 0, 0, int(o.version.Load()), 0, time.UTC).Format(http.TimeFormat))
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.Write(data)
}

func TestOriginThatNeverAnswers304IsNotRehashed(t *testing.T) {
	for _, withETag := range []bool{true, false} {
		t.Run(fmt.Sprintf("etag=%v", withETag), func(t *testing.T) {
			origin := &neverNotModified{withETag: withETag}
			data := randomBytes(2<<20, 63)
			origin.data.Store(&data)
			upstream := httptest.NewServer(origin)
			defer upstream.Close()
			base := startCaddy(t, "p2pxhr\nmetrics /metrics\nreverse_proxy "+upstream.URL)

			var first *protocol.Manifest
			for range 3 {
				_, m := fetchManifest(t, base, "/f.bin")
				if m == nil || (first != nil && m.ID != first.ID) {
					t.Fatalf("manifest %+v", m)
				}
				first = m
			}
			built := `p2pxhr_manifest_requests_total{result="built"}`
			if b, r := metricValue(t, base, built), metricValue(t, base, `p2pxhr_manifest_requests_total{result="revalidated"}`); b != 1 || r != 2 {
				t.Errorf("3 requests of an unchanged file: %v built, %v revalidated; want 1 and 2", b, r)
			}
			// Changed bytes under new validators are built anew.
			changed := randomBytes(2<<20, 64)
			origin.data.Store(&changed)
			origin.version.Store(1)
			if _, m := fetchManifest(t, base, "/f.bin"); m == nil || m.ID == first.ID {
				t.Fatalf("changed file kept its manifest")
			}
			if b := metricValue(t, base, built); b != 2 {
				t.Errorf("%v builds after a change, want 2", b)
			}
		})
	}
}

// clientFrom is an HTTP client whose connections come from the loopback
// address ip (127.0.0.0/8 is all local on Linux).
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

func TestManifestBuildsAreBoundedGloballyAndPerAddress(t *testing.T) {
	origin := newHeldOrigin(randomBytes(1<<20, 65))
	upstream := httptest.NewServer(origin)
	defer upstream.Close()
	defer origin.free()
	base := startCaddy(t, "p2pxhr\nmetrics /metrics\nreverse_proxy "+upstream.URL)

	type result struct {
		status int
		retry  string
	}
	ask := func(c *http.Client, url string, out chan<- result) {
		res, err := c.Get(base + "/_p2pxhr/manifest?url=" + url)
		if err != nil {
			out <- result{}
			return
		}
		res.Body.Close()
		out <- result{res.StatusCode, res.Header.Get("Retry-After")}
	}
	one, two := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	results := make(chan result, 16)
	next := func() result {
		select {
		case r := <-results:
			return r
		case <-time.After(30 * time.Second):
			t.Fatal("no answer to a manifest request in 30 s")
			return result{}
		}
	}
	// One address asks for ten different files at once: four are hashed,
	// four wait for a slot, two are refused.
	for i := range maxBuildsPerAddress + 2 {
		go ask(one, fmt.Sprintf("/f%d.bin", i), results)
	}
	for range 2 {
		if r := next(); r.status != http.StatusTooManyRequests || r.retry == "" {
			t.Fatalf("the address's builds past %d: status %d, Retry-After %q; want 429 with Retry-After",
				maxBuildsPerAddress, r.status, r.retry)
		}
	}
	waitMetric(t, base, `p2pxhr_manifest_builds{state="hashing"}`, maxHashingBuilds)
	waitMetric(t, base, `p2pxhr_manifest_builds{state="queued"}`, maxBuildsPerAddress-maxHashingBuilds)
	// Another address is not refused: it waits its turn.
	go ask(two, "/g.bin", results)
	waitMetric(t, base, `p2pxhr_manifest_builds{state="queued"}`, maxBuildsPerAddress-maxHashingBuilds+1)

	origin.free()
	for range maxBuildsPerAddress + 1 {
		if r := next(); r.status != http.StatusOK {
			t.Fatalf("a queued build ended with status %d", r.status)
		}
	}
	waitMetric(t, base, `p2pxhr_manifest_builds{state="hashing"}`, 0)
}
