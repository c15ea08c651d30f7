package realnet

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	_ "github.com/p2pxhr/p2pxhr/caddymodule"
	_ "github.com/p2pxhr/p2pxhr/cmd/p2pxhr/demofiles"
	"github.com/p2pxhr/p2pxhr/internal/browsertest"
	"github.com/p2pxhr/p2pxhr/internal/netnstest"
	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
)

// caddyMu serialises the tests of this package that run Caddy: its
// config is process-global.
var caddyMu sync.Mutex

// repoDir is the repository root, found from this file.
func repoDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// world is three networks routed through a fourth: the site's and two
// visitors'. No NAT: what separates the visitors is that their browsers
// hide their host addresses behind mDNS names no other network resolves.
type world struct {
	net  *netnstest.Network
	site *netnstest.Host
	base string // https://<site address>
}

func newWorld(t *testing.T, visitors ...string) *world {
	t.Helper()
	n := netnstest.Routed(t, append([]string{"site"}, visitors...)...)
	w := &world{net: n, site: n.Host("site")}
	w.base = "https://" + w.site.Addr.String()
	return w
}

// startSite runs Caddy inside the site's namespace over HTTPS (`tls
// internal`) with the given p2pxhr block (a bare `p2pxhr` by default),
// the demo files under /files/ and the client's test pages under /test/.
// The site's uplink is shaped to rate, as a server's is, so that what
// peers carry shows.
func (w *world) startSite(t *testing.T, p2pxhr, rate string) {
	t.Helper()
	w.site.Shape(t, rate)
	dir := t.TempDir()
	logs := "log {\n\t\toutput discard\n\t}"
	if os.Getenv("P2PXHR_TEST_LOGS") != "" {
		logs = "log {\n\t\tlevel DEBUG\n\t}"
	}
	cf := fmt.Sprintf(`{
	admin off
	persist_config off
	skip_install_trust
	storage file_system %s
	%s
}
%s {
	tls internal
	%s
	handle_path /files/* {
		p2pxhr_demo_files {
			size 24MiB
		}
	}
	handle_path /files2/* {
		p2pxhr_demo_files {
			size 24MiB
			seed 2
		}
	}
	handle {
		root * %s
		file_server
	}
}
`, filepath.Join(dir, "caddy"), logs, w.base, withDashboard(p2pxhr), filepath.Join(repoDir(), "client"))
	cfg := testcaddy.Adapt(t, cf)
	caddyMu.Lock()
	// Loaded on a thread inside the namespace: Caddy opens its listeners
	// (TCP 443 and 80, UDP 443 and the STUN port) while loading.
	if err := w.site.Do(func() error { return caddy.Load(cfg, true) }); err != nil {
		caddyMu.Unlock()
		t.Fatalf("loading Caddy in %s: %v", w.site.Name, err)
	}
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("stopping Caddy: %v", err)
		}
		caddyMu.Unlock()
	})
	// Reachable from a visitor's network, certificate issued.
	client := w.net.Hosts[1].HTTPClient()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := client.Get(w.base + "/test/page.html")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the site at %s did not answer: %v", w.base, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// withDashboard turns the dashboard on in a p2pxhr block, so the test can
// read the operators' figures at {prefix}dashboard/stats.
func withDashboard(block string) string {
	if before, after, ok := strings.Cut(block, "{"); ok {
		return before + "{\n\t\tdashboard" + after
	}
	return block + " {\n\t\tdashboard\n\t}"
}

// stats reads {prefix}dashboard/stats from inside the site's network.
func (w *world) stats(t *testing.T) siteStats {
	t.Helper()
	res, err := w.site.HTTPClient().Get(w.base + "/_p2pxhr/dashboard/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var st siteStats
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("stats: %v: %s", err, body)
	}
	return st
}

// siteStats is the part of {prefix}dashboard/stats these tests read.
type siteStats struct {
	Swarm struct {
		Connections struct {
			Connected map[string]int64 `json:"connected"`
			Failed    int64            `json:"failed"`
		} `json:"connections"`
	} `json:"swarm"`
	ICE struct {
		STUN      string `json:"stun"`
		STUNError string `json:"stunError"`
	} `json:"ice"`
}

// visitor is one browser process on its own network, with its own
// profile and default WebRTC settings (no flag that exposes host
// addresses or loopback).
func (w *world) visitor(t *testing.T, label string, kind browsertest.Kind) *browsertest.Browser {
	t.Helper()
	return browsertest.Launch(t, browsertest.Options{Kind: kind, Netns: w.net.Host(label).Name,
		RealNetwork: true, IgnoreCertificateErrors: true})
}

// transfer is what trace() in client/test/helpers.js returns, and the
// page's connection outcomes after it.
type transfer struct {
	Status   int `json:"status"`
	Response struct {
		Size int64  `json:"size"`
		SHA  string `json:"sha"`
	} `json:"response"`
	Stats struct {
		FromHTTP  int64 `json:"bytesFromHttp"`
		FromPeers int64 `json:"bytesFromPeers"`
		Peers     int   `json:"peers"`
	} `json:"stats"`
}

// download fetches url with peer5.Request in the page and returns the
// result, checked against the origin's bytes.
func download(t *testing.T, p *browsertest.Page, url string, size int64, sha string) transfer {
	t.Helper()
	var r transfer
	p.Eval(t, 2*time.Minute, fmt.Sprintf("trace(peer5.Request, %q, 'arraybuffer')", url), &r)
	if r.Status != 200 || r.Response.Size != size || r.Response.SHA != sha {
		t.Fatalf("%s: status %d, %d bytes, sha %s; want 200, %d bytes, sha %s", url, r.Status, r.Response.Size, r.Response.SHA, size, sha)
	}
	if r.Stats.FromHTTP+r.Stats.FromPeers != size {
		t.Fatalf("%s: %d from HTTP + %d from peers != %d", url, r.Stats.FromHTTP, r.Stats.FromPeers, size)
	}
	return r
}

// pageConnections are the outcomes of the attempts a page offered.
type pageConnections struct {
	Connected map[string]int64 `json:"connected"`
	Failed    int64            `json:"failed"`
}

func connections(t *testing.T, p *browsertest.Page) pageConnections {
	t.Helper()
	var c pageConnections
	p.Eval(t, 10*time.Second, "peer5.stats().connections", &c)
	return c
}

// originSHA fetches url inside the site's own network (not through its
// shaped uplink) and returns its size and SHA-256.
func (w *world) originSHA(t *testing.T, path string) (int64, string) {
	t.Helper()
	res, err := w.site.HTTPClient().Get(w.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, res.Body)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", path, res.StatusCode, err)
	}
	return n, hex.EncodeToString(h.Sum(nil))
}

func joinKeys(m map[string]int64) string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%d", k, v))
	}
	return strings.Join(out, ",")
}
