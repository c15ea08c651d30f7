package caddymodule

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
	"github.com/p2pxhr/p2pxhr/protocol"
)

// twoHostSite runs one p2pxhr handler for two site addresses on one port,
// http://127.0.0.1:P and http://localhost:P, both resolvable without DNS.
// body follows the p2pxhr directive. It returns the two base URLs.
func twoHostSite(t *testing.T, module, body string) (ip, local string) {
	t.Helper()
	port := freePort(t)
	ip = fmt.Sprintf("http://127.0.0.1:%d", port)
	local = fmt.Sprintf("http://localhost:%d", port)
	cfg := fmt.Sprintf("%s%s, %s {\n\tbind 127.0.0.1\n\t%s\n\t%s\n}\n", testcaddy.GlobalOptions(), ip, local, module, body)
	startCaddyfile(t, cfg, ip)
	return ip, local
}

// perHostFiles writes a different file of one size under root/<host>/name
// for each host, all with one modification time, so file_server gives the
// two the same ETag and Last-Modified.
func perHostFiles(t *testing.T, root, name string, files map[string][]byte) {
	t.Helper()
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for host, data := range files {
		dir := filepath.Join(root, host)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, when, when); err != nil {
			t.Fatal(err)
		}
	}
}

// hostKeyedOrigin ignores Range and serves a body chosen by the Host it is
// asked for, with validators that do not depend on the host: what a
// catch-all origin behind reverse_proxy looks like when two tenants' files
// have the same size and date.
type hostKeyedOrigin map[string][]byte

func (o hostKeyedOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, _ := strings.Cut(r.Host, ":")
	data, ok := o[host]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", `"same-for-all"`)
	w.Header().Set("Last-Modified", "Thu, 01 Jan 2026 00:00:00 GMT")
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.Write(data)
}

func TestRangeCacheKeepsHostsApart(t *testing.T) {
	a, b := randomBytes(600<<10, 41), randomBytes(600<<10, 42)
	upstream := httptest.NewServer(hostKeyedOrigin{"127.0.0.1": a, "localhost": b})
	defer upstream.Close()
	ip, local := twoHostSite(t, "p2pxhr", "reverse_proxy "+upstream.URL)

	// localhost fills the range cache first; 127.0.0.1 must still get its own bytes.
	for _, c := range []struct {
		base string
		want []byte
	}{{local, b}, {ip, a}, {local, b}} {
		res, body := get(t, c.base+"/f.bin", "Range", "bytes=1000-1999")
		if res.StatusCode != http.StatusPartialContent || !bytes.Equal(body, c.want[1000:2000]) {
			t.Fatalf("%s: status %d and not its own bytes", c.base, res.StatusCode)
		}
	}
}

func TestManifestsAndSwarmsKeepHostsApart(t *testing.T) {
	root := t.TempDir()
	a, b := randomBytes(600<<10, 43), randomBytes(600<<10, 44)
	perHostFiles(t, root, "f.bin", map[string][]byte{"127.0.0.1": a, "localhost": b})
	ip, local := twoHostSite(t, "p2pxhr", "root * "+root+"/{http.request.host}\n\tfile_server")

	_, mb := fetchManifest(t, local, "/f.bin")
	_, ma := fetchManifest(t, ip, "/f.bin")
	if ma == nil || mb == nil {
		t.Fatal("no manifest")
	}
	if ma.Size != mb.Size || ma.ETag != mb.ETag {
		t.Fatalf("the test needs equal sizes and ETags: %d %q, %d %q", ma.Size, ma.ETag, mb.Size, mb.ETag)
	}
	if ma.ID == mb.ID || ma.Blocks[0] != independentHashes(a, protocol.DefaultBlockSize)[0] {
		t.Fatalf("127.0.0.1 was given localhost's manifest (ids %s and %s)", ma.ID, mb.ID)
	}

	// A swarm opens only on the host whose manifest has that id.
	p := newWSPeer(t, ip)
	p.send(&protocol.Join{Swarm: mb.ID, Blocks: len(mb.Blocks), Bitfield: protocol.NewBitfield(len(mb.Blocks))})
	if e, ok := p.recvType(protocol.TypeError).(*protocol.Error); !ok || e.Code != protocol.ErrCodeUnknownSwarm {
		t.Fatalf("joining localhost's swarm on 127.0.0.1: %+v", e)
	}
	p.send(&protocol.Join{Swarm: ma.ID, Blocks: len(ma.Blocks), Bitfield: protocol.NewBitfield(len(ma.Blocks))})
	p.recvType(protocol.TypeNeighbours)
}
