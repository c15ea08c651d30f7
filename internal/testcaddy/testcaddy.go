// Package testcaddy runs a real Caddy inside a test process, loaded from
// Caddyfile text, on free loopback ports. Tests import the modules they
// need (the p2pxhr module among them) themselves.
package testcaddy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	_ "github.com/caddyserver/caddy/v2/modules/standard" // file_server, reverse_proxy, encode...
)

// caddyMu serialises tests that run Caddy: its config is process-global.
var caddyMu sync.Mutex

// loaded is the JSON config last loaded by StartCaddyfile or Reload, for
// Restart.
var loaded []byte

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Adapt turns Caddyfile text into JSON config, failing the test on error.
func Adapt(t testing.TB, caddyfile string) []byte {
	t.Helper()
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatalf("adapting Caddyfile: %v\n%s", err, caddyfile)
	}
	return cfg
}

// GlobalOptions are the global options of every test server: no admin
// endpoint, no HTTPS, nothing saved, and logs discarded unless
// P2PXHR_TEST_LOGS is set.
func GlobalOptions() string {
	global := "admin off\n\tauto_https off\n\tpersist_config off"
	if os.Getenv("P2PXHR_TEST_LOGS") == "" {
		global += "\n\tlog {\n\t\toutput discard\n\t}"
	}
	return "{\n\t" + global + "\n}\n"
}

// Start runs a real Caddy with the given site block body on a free
// loopback port and returns its base URL; the server stops with the test.
func Start(t testing.TB, siteBody string) string {
	t.Helper()
	base := fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	return StartCaddyfile(t, fmt.Sprintf("%s%s {\n%s\n}\n", GlobalOptions(), base, siteBody), base)
}

// StartCaddyfile loads a whole Caddyfile and waits until base answers.
func StartCaddyfile(t testing.TB, caddyfile, base string) string {
	t.Helper()
	caddyMu.Lock()
	loaded = Adapt(t, caddyfile)
	if err := caddy.Load(loaded, true); err != nil {
		caddyMu.Unlock()
		t.Fatalf("loading config: %v", err)
	}
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("stopping caddy: %v", err)
		}
		caddyMu.Unlock()
	})
	waitListening(t, base)
	return base
}

// waitListening waits until base accepts connections.
func waitListening(t testing.TB, base string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not listen on %s: %v", base, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Reload loads a new Caddyfile into the Caddy a StartCaddyfile of the same
// test runs, as `caddy reload` does: the new config is provisioned and
// started, then the old one stopped and cleaned up.
func Reload(t testing.TB, caddyfile string) {
	t.Helper()
	cfg := Adapt(t, caddyfile)
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("reloading: %v\n%s", err, caddyfile)
	}
	loaded = cfg
}

// Restart stops the Caddy a StartCaddyfile of the same test runs and loads
// its last config anew, as a restart of the process would (nothing kept in
// memory), and waits until base answers.
func Restart(t testing.TB, base string) {
	t.Helper()
	if err := caddy.Stop(); err != nil {
		t.Fatalf("stopping caddy: %v", err)
	}
	if err := caddy.Load(loaded, true); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	waitListening(t, base)
}

// Get performs a GET with optional header name/value pairs and returns the
// response with its body read.
func Get(t testing.TB, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	res, body, err := get(http.DefaultClient, url, headers...)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return res, body
}

// FreshGet is Get for the moments after a reload, on connections of its
// own: Caddy closes the old server's idle connections, and a connection
// the old server accepts while it stops is dropped with no answer (EOF or
// a reset). Such a GET, which no server answered, is tried again, for up
// to two seconds.
func FreshGet(t testing.TB, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(2 * time.Second)
	for {
		res, body, err := get(client, url, headers...)
		if err == nil {
			return res, body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(client *http.Client, url string, headers ...string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the body: %w", err)
	}
	return res, body, nil
}
