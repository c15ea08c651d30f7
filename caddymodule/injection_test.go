package caddymodule

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"golang.org/x/net/html"
)

const plainPage = "<!doctype html><html><head><title>t</title></head><body><p>hello</p></body></html>"

// pageOrigin serves plainPage, compressed as the path asks, whatever the
// request accepts: the worst case of an upstream.
func pageOrigin(t *testing.T) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		var buf bytes.Buffer
		switch r.URL.Path {
		case "/gzip.html":
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(&buf)
			zw.Write([]byte(plainPage))
			zw.Close()
		case "/br.html":
			w.Header().Set("Content-Encoding", "br")
			bw := brotli.NewWriter(&buf)
			bw.Write([]byte(plainPage))
			bw.Close()
		default:
			buf.WriteString(plainPage)
		}
		w.Write(buf.Bytes())
	}))
}

// scriptInHead parses a page and returns the src of the scripts in <head>.
func scriptInHead(t *testing.T, page []byte) []string {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatalf("not HTML: %v", err)
	}
	var srcs []string
	var walk func(n *html.Node, inHead bool)
	walk = func(n *html.Node, inHead bool) {
		if n.Type == html.ElementNode && n.Data == "head" {
			inHead = true
		}
		if inHead && n.Type == html.ElementNode && n.Data == "script" {
			for _, a := range n.Attr {
				if a.Key == "src" {
					srcs = append(srcs, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inHead)
		}
	}
	walk(doc, false)
	return srcs
}

func TestPagesBehindReverseProxyGetTheClient(t *testing.T) {
	origin := pageOrigin(t)
	defer origin.Close()
	base := startCaddy(t, "encode\np2pxhr\nreverse_proxy "+origin.URL)
	for _, page := range []string{"/plain.html", "/gzip.html", "/br.html"} {
		// Go's client asks for gzip and decodes it transparently, like a browser.
		res, body := get(t, base+page)
		srcs := scriptInHead(t, body)
		if res.StatusCode != 200 || len(srcs) != 1 || !strings.HasPrefix(srcs[0], "/_p2pxhr/client.js?v=") {
			t.Errorf("%s: status %d, scripts in head %v\n%s", page, res.StatusCode, srcs, body)
		}
		if !bytes.Contains(body, []byte("<p>hello</p>")) {
			t.Errorf("%s: body lost: %s", page, body)
		}
		// The tag's script is there to load.
		if res, _ := get(t, base+srcs[0]); res.StatusCode != 200 {
			t.Errorf("%s: the tag's src answers %d", page, res.StatusCode)
		}
	}
}

func TestInjectionCanBeTurnedOffOrExcluded(t *testing.T) {
	origin := pageOrigin(t)
	defer origin.Close()
	t.Run("off", func(t *testing.T) {
		base := startCaddy(t, "p2pxhr {\n inject off\n}\nreverse_proxy "+origin.URL)
		if _, body := get(t, base+"/plain.html"); string(body) != plainPage {
			t.Errorf("inject off changed the page: %s", body)
		}
	})
	t.Run("excluded", func(t *testing.T) {
		base := startCaddy(t, "p2pxhr {\n inject_exclude /admin/*\n}\nreverse_proxy "+origin.URL)
		if _, body := get(t, base+"/admin/plain.html"); string(body) != plainPage {
			t.Errorf("an excluded path was changed: %s", body)
		}
		if _, body := get(t, base+"/plain.html"); len(scriptInHead(t, body)) != 1 {
			t.Errorf("a path not excluded lacks the tag: %s", body)
		}
	})
}

func TestTagCarriesTheClientOptions(t *testing.T) {
	origin := pageOrigin(t)
	defer origin.Close()
	base := startCaddy(t, "p2pxhr {\n auto *.mp4 /downloads/*\n ice_server stun:stun.example.org:3478\n ice_server turn:turn.example.org user secret\n}\nreverse_proxy "+origin.URL)
	_, body := get(t, base+"/plain.html")
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string]string{}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "script" {
			for _, a := range n.Attr {
				attrs[a.Key] = a.Val
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	want := map[string]string{
		"data-prefix": "/_p2pxhr/",
		"data-auto":   "*.mp4 /downloads/*",
		"data-group":  "p2p",
	}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("%s=%q, want %q", k, attrs[k], v)
		}
	}
	// ICE servers travel in the coordinator's welcome, to every client
	// however the page loads it, not on the injected tag only.
	if v, ok := attrs["data-ice-servers"]; ok {
		t.Errorf("the tag carries data-ice-servers=%q", v)
	}
	ice := welcomeICE(t, base)
	if n := len(ice); n < 2 || ice[n-2].URLs[0] != "stun:stun.example.org:3478" || ice[n-1].Username != "user" {
		t.Errorf("welcome ICE servers %+v lack the configured ones", ice)
	}
}

func TestInjectionStreamsThroughCaddy(t *testing.T) {
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<!doctype html><html><head><title>slow</title>")
		w.(http.Flusher).Flush()
		select { // the rest only once the client has seen the start
		case <-release:
		case <-time.After(10 * time.Second):
		}
		io.WriteString(w, "</head><body>rest</body></html>")
	}))
	defer upstream.Close()
	defer close(release)
	base := startCaddy(t, "encode\np2pxhr\nreverse_proxy "+upstream.URL)

	res, err := http.Get(base + "/page.html")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	first := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 4096)
		var got []byte
		for !bytes.Contains(got, []byte("client.js")) {
			n, err := res.Body.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		first <- got
	}()
	select {
	case got := <-first:
		if !bytes.Contains(got, []byte("<title>slow</title>")) || !bytes.Contains(got, []byte("/_p2pxhr/client.js")) {
			t.Fatalf("first part %q lacks the head or the tag", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the start of the page (with the tag) did not arrive while the origin held the rest back")
	}
}
