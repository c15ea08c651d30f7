package p2pxhr

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
)

func init() {
	// Progress every 50ms lets tests act mid-transfer on what they read.
	plainInterval = 50 * time.Millisecond
}

// syncBuffer is a bytes.Buffer safe for the command's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cmdRun is the outcome of one in-process command.
type cmdRun struct {
	code           int
	err            error
	stdout, stderr *syncBuffer
}

// flags parses args into a fresh flag set defined by define.
func flags(t *testing.T, define func(*pflag.FlagSet), args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	define(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

// getCmd runs `p2pxhr get args...` in-process.
func getCmd(t *testing.T, ctx context.Context, args ...string) cmdRun {
	t.Helper()
	r := cmdRun{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	r.code, r.err = runGet(ctx, flags(t, getFlags, args...), r.stdout, r.stderr)
	return r
}

// seedCmd starts `p2pxhr seed args...` in-process; stop interrupts it (if
// it still runs) and returns its outcome.
func seedCmd(t *testing.T, ctx context.Context, args ...string) (stderr *syncBuffer, stop func() cmdRun) {
	stderr, _, stop = seedCmdDone(t, ctx, args...)
	return stderr, stop
}

// seedCmdDone is seedCmd that also returns a channel closed when the
// command has returned by itself.
func seedCmdDone(t *testing.T, ctx context.Context, args ...string) (stderr *syncBuffer, ended <-chan struct{}, stop func() cmdRun) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	r := cmdRun{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	done := make(chan struct{})
	fs := flags(t, seedFlags, args...)
	go func() {
		defer close(done)
		r.code, r.err = runSeed(ctx, fs, r.stdout, r.stderr)
	}()
	var once sync.Once
	stop = func() cmdRun {
		once.Do(func() { cancel(); <-done })
		return r
	}
	t.Cleanup(func() { stop() })
	return r.stderr, done, stop
}

// site runs Caddy over a directory of files with routes (the p2pxhr
// module and file_server, in the order given) inside a route block.
func site(t *testing.T, routes string, files map[string][]byte) (base, root string) {
	t.Helper()
	root = t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(root, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return testcaddy.Start(t, "root * "+root+"\nroute {\n"+routes+"\n}"), root
}

func randomData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// siteStats reads the module's {prefix}dashboard/stats (sites need `dashboard`).
type siteStats struct {
	Members        int   `json:"members"`
	BytesFromHTTP  int64 `json:"bytesFromHttp"`
	BytesFromPeers int64 `json:"bytesFromPeers"`
	BytesUploaded  int64 `json:"bytesUploaded"`
	Reports        int64 `json:"reports"`
}

func stats(t *testing.T, base string) siteStats {
	t.Helper()
	resp, err := http.Get(base + "/_p2pxhr/dashboard/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The coordinator's totals, at the top level or (in the module's
	// newer report) under "swarm".
	var s struct {
		siteStats
		Swarm *siteStats `json:"swarm"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.Swarm != nil {
		return *s.Swarm
	}
	return s.siteStats
}

// waitFor polls cond every 10ms until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// checkFile compares a downloaded file with the origin's bytes.
func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the origin's %d", path, len(got), len(want))
	}
}

// noPartFiles fails if a temporary download file was left in dir.
func noPartFiles(t *testing.T, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, ".*.part"))
	if len(m) > 0 {
		t.Errorf("temporary files left behind: %v", m)
	}
}

var peersPercent = regexp.MustCompile(`from peers: .* \((\d+)%\)`)
