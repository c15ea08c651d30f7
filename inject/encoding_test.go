package inject

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

const encodedPage = "<!doctype html><html><head><meta charset=utf-8><title>compressed</title></head><body><p>hello</p></body></html>"

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zlibbed(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func deflated(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// xorCoding is a test-only "Content-Encoding: x-xor" showing that
// Options.Decoders is consulted.
func xorCoding(b []byte) []byte {
	out := bytes.Clone(b)
	for i := range out {
		out[i] ^= 0x5a
	}
	return out
}

type xorReader struct{ r io.Reader }

func (x xorReader) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	for i := range p[:n] {
		p[i] ^= 0x5a
	}
	return n, err
}

func TestCompressedUpstreams(t *testing.T) {
	decoderUsed := false
	in := newTestInjector(t, Options{Src: testSrc, Decoders: map[string]Decoder{
		"x-xor": func(r io.Reader) (io.ReadCloser, error) {
			decoderUsed = true
			return io.NopCloser(xorReader{r}), nil
		},
	}})
	big := encodedPage + strings.Repeat("<p>more text to compress</p>", 20000)
	cases := []struct {
		coding string
		body   []byte
		plain  string
	}{
		{"gzip", gzipped([]byte(encodedPage)), encodedPage},
		{"gzip", gzipped([]byte(big)), big},
		{"x-gzip", gzipped([]byte(encodedPage)), encodedPage},
		{"deflate", zlibbed([]byte(encodedPage)), encodedPage},
		{"deflate", deflated([]byte(encodedPage)), encodedPage}, // raw DEFLATE, as some servers send
		{"X-Xor", xorCoding([]byte(encodedPage)), encodedPage},
	}
	for _, c := range cases {
		for _, chunks := range [][]int{nil, {1}, {13}} {
			rec := httptest.NewRecorder()
			rw := in.Wrap(rec, httptest.NewRequest("GET", "/", nil))
			rw.Header().Set("Content-Type", "text/html")
			rw.Header().Set("Content-Encoding", c.coding)
			rw.Header().Set("Content-Length", "123")
			rw.Header().Set("ETag", `"e1"`)
			writeChunks(t, rw, c.body, chunks, false)
			if err := rw.Close(); err != nil {
				t.Fatalf("%s: %v", c.coding, err)
			}
			h := rec.Result().Header
			if h.Get("Content-Encoding") != "" || h.Get("Content-Length") != "" || h.Get("ETag") != `W/"e1"` {
				t.Errorf("%s: headers %v", c.coding, h)
			}
			want := strings.Replace(c.plain, "</head>", in.Tag(nil, "")+"</head>", 1)
			if rec.Body.String() != want {
				t.Errorf("%s %v: body %.200q", c.coding, chunks, rec.Body)
			}
			assertTagInHead(t, rec.Body.String())
		}
	}
	if !decoderUsed {
		t.Error("Options.Decoders was not used")
	}
}

// assertTagInHead parses the page as a browser would and finds the client
// script inside <head>.
func assertTagInHead(t *testing.T, page string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var find func(n *html.Node, inHead bool) bool
	find = func(n *html.Node, inHead bool) bool {
		if n.DataAtom == atom.Script && inHead {
			for _, a := range n.Attr {
				if a.Key == "src" && a.Val == testSrc {
					return true
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if find(c, inHead || n.DataAtom == atom.Head) {
				return true
			}
		}
		return false
	}
	if !find(doc, false) {
		t.Errorf("no client script in the parsed head of %.200q", page)
	}
}

func TestBrokenGzip(t *testing.T) {
	in := newTestInjector(t, Options{Src: testSrc})
	rec := httptest.NewRecorder()
	rw := in.Wrap(rec, httptest.NewRequest("GET", "/", nil))
	rw.Header().Set("Content-Type", "text/html")
	rw.Header().Set("Content-Encoding", "gzip")
	gz := gzipped([]byte(encodedPage))
	rw.Write(gz[:len(gz)/2]) // truncated upstream
	if err := rw.Close(); err == nil {
		t.Error("Close reported no error for a truncated gzip body")
	}
	rec = httptest.NewRecorder()
	rw = in.Wrap(rec, httptest.NewRequest("GET", "/", nil))
	rw.Header().Set("Content-Type", "text/html")
	rw.Header().Set("Content-Encoding", "gzip")
	if _, err := rw.Write([]byte("this is not gzip at all")); err == nil {
		t.Error("Write accepted a body that is not gzip")
	}
	if err := rw.Close(); err == nil || rec.Body.Len() > 0 {
		t.Errorf("Close: %v, body %q", err, rec.Body)
	}
}
