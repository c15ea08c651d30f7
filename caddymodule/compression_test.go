package caddymodule

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// compressiblePage is a few KiB of HTML that compresses to a few hundred
// bytes, like a real page's repetitive markup.
var compressiblePage = "<!doctype html><html><head><title>compressed</title></head><body>" +
	strings.Repeat("<p class=\"item\">an item of a long list</p>\n", 80) + "</body></html>"

// compressedOrigin serves compressiblePage compressed with the coding the
// path names (/gzip.html, /br.html, /zstd.html), as an app server would,
// or plain and of unknown length (/identity.html).
func compressedOrigin(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		coding := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), ".html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if coding == "identity" { // over 2 KiB in one write: chunked, no Content-Length
			w.Write([]byte(compressiblePage))
			return
		}
		var buf bytes.Buffer
		var zw io.WriteCloser
		switch coding {
		case "gzip":
			zw = gzip.NewWriter(&buf)
		case "br":
			zw = brotli.NewWriter(&buf)
		case "zstd":
			zw, _ = zstd.NewWriter(&buf)
		}
		zw.Write([]byte(compressiblePage))
		zw.Close()
		w.Header().Set("Content-Encoding", coding)
		w.Header().Set("Vary", "Accept-Encoding")
		w.Write(buf.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv
}

// rawGet fetches url accepting coding, without decoding the body.
func rawGet(t *testing.T, url, coding string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept-Encoding", coding)
	res, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

func decompress(t *testing.T, coding string, body []byte) []byte {
	t.Helper()
	var r io.Reader
	var err error
	switch coding {
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(body))
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	case "zstd":
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(body))
		r = d
	}
	if err != nil {
		t.Fatalf("%s: %v", coding, err)
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s body does not decode: %v", coding, err)
	}
	return plain
}

// A page the origin compressed leaves the server compressed, with the tag,
// whether or not `encode` wraps the module and whatever its
// minimum_length: the injector writes the same coding again.
func TestCompressedPagesStayCompressed(t *testing.T) {
	origin := compressedOrigin(t)
	for name, site := range map[string]string{"with encode": "encode\np2pxhr\nreverse_proxy ", "alone": "p2pxhr\nreverse_proxy "} {
		t.Run(name, func(t *testing.T) { checkStaysCompressed(t, startCaddy(t, site+origin.URL), site) })
	}
}

func checkStaysCompressed(t *testing.T, base, site string) {
	for _, coding := range []string{"gzip", "br", "zstd"} {
		res, body := rawGet(t, base+"/"+coding+".html", coding)
		if ce := res.Header.Get("Content-Encoding"); ce != coding {
			t.Errorf("%q, %s page: Content-Encoding %q, %d bytes", site, coding, ce, len(body))
			continue
		}
		if len(body) >= len(compressiblePage)/4 {
			t.Errorf("%q, %s page: %d bytes for a %d-byte page", site, coding, len(body), len(compressiblePage))
		}
		plain := decompress(t, coding, body)
		if !bytes.Contains(plain, []byte("/_p2pxhr/client.js")) || !bytes.HasSuffix(plain, []byte("</body></html>")) {
			t.Errorf("%q, %s page: %.200s", site, coding, plain)
		}
	}
}

// A plain page of unknown length that encode compressed before the module
// is still compressed with it: the injector's first write carries what it
// held, not just the bytes before the tag (under minimum_length).
func TestChunkedPageStaysCompressedByEncode(t *testing.T) {
	base := startCaddy(t, "encode\np2pxhr\nreverse_proxy "+compressedOrigin(t).URL)
	res, body := rawGet(t, base+"/identity.html", "gzip")
	if ce := res.Header.Get("Content-Encoding"); ce != "gzip" {
		t.Fatalf("Content-Encoding %q, %d bytes", ce, len(body))
	}
	if plain := decompress(t, "gzip", body); !bytes.Contains(plain, []byte("/_p2pxhr/client.js")) {
		t.Errorf("no tag: %.200s", plain)
	}
}
