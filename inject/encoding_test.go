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
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Accept-Encoding", "gzip, deflate, br")
			rw := in.Wrap(rec, req)
			rw.Header().Set("Content-Type", "text/html")
			rw.Header().Set("Content-Encoding", c.coding)
			rw.Header().Set("Content-Length", "123")
			rw.Header().Set("ETag", `"e1"`)
			writeChunks(t, rw, c.body, chunks, false)
			if err := rw.Close(); err != nil {
				t.Fatalf("%s: %v", c.coding, err)
			}
			h := rec.Result().Header
			// Compressed before, compressed after, with the same coding
			// where the injector has an encoder for it.
			wantCoding := c.coding
			if c.coding == "X-Xor" {
				wantCoding = ""
			}
			if h.Get("Content-Encoding") != wantCoding || h.Get("Content-Length") != "" || h.Get("ETag") != `W/"e1"` {
				t.Errorf("%s: headers %v", c.coding, h)
			}
			got := decodeBody(t, wantCoding, rec.Body.Bytes())
			want := strings.Replace(c.plain, "</head>", in.Tag(nil, "")+"</head>", 1)
			if got != want {
				t.Errorf("%s %v: body %.200q", c.coding, chunks, got)
			}
			assertTagInHead(t, got)
		}
	}
	if !decoderUsed {
		t.Error("Options.Decoders was not used")
	}
}

// decodeBody undoes a content coding the injector wrote.
func decodeBody(t *testing.T, coding string, body []byte) string {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	var err error
	switch coding {
	case "":
		return string(body)
	case "gzip", "x-gzip":
		r, err = gzip.NewReader(r)
	case "deflate":
		r, err = zlib.NewReader(r)
	default:
		t.Fatalf("no decoder for %q", coding)
	}
	if err != nil {
		t.Fatalf("%s: %v", coding, err)
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", coding, err)
	}
	return string(plain)
}

// A page goes out decoded, without Content-Encoding (for an outer encoder
// to compress), when the encoder is turned off by a nil Encoders entry or
// when the request did not accept the upstream's coding.
func TestCompressedUpstreamDecodedOnly(t *testing.T) {
	for name, tc := range map[string]struct {
		encoders map[string]Encoder
		accept   string
	}{
		"encoder off":      {map[string]Encoder{"gzip": nil}, "gzip"},
		"not accepted":     {nil, "br"},
		"refused by q=0":   {nil, "gzip;q=0, *"},
		"no Accept header": {nil, ""},
	} {
		in := newTestInjector(t, Options{Src: testSrc, Encoders: tc.encoders})
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		if tc.accept != "" {
			req.Header.Set("Accept-Encoding", tc.accept)
		}
		rw := in.Wrap(rec, req)
		rw.Header().Set("Content-Type", "text/html")
		rw.Header().Set("Content-Encoding", "gzip")
		rw.Write(gzipped([]byte(encodedPage)))
		if err := rw.Close(); err != nil {
			t.Fatal(err)
		}
		if ce := rec.Result().Header.Get("Content-Encoding"); ce != "" {
			t.Errorf("%s: Content-Encoding %q", name, ce)
		}
		if want := strings.Replace(encodedPage, "</head>", in.Tag(nil, "")+"</head>", 1); rec.Body.String() != want {
			t.Errorf("%s: body %q", name, rec.Body)
		}
	}
}

// writeSizes records the size of every Write.
type writeSizes struct {
	*httptest.ResponseRecorder
	sizes []int
}

func (w *writeSizes) Write(p []byte) (int, error) {
	w.sizes = append(w.sizes, len(p))
	return w.ResponseRecorder.Write(p)
}

// The held start of a page, the tag and the rest of the write go out in
// one write: an outer encoder (Caddy's encode) decides from the first
// write whether to compress a page of unknown length.
func TestHeldBytesGoOutInOneWrite(t *testing.T) {
	in := newTestInjector(t, Options{Src: testSrc})
	page := "<!doctype html><html><head><title>t</title></head><body>" + strings.Repeat("<p>text</p>", 100) + "</body></html>"
	w := &writeSizes{ResponseRecorder: httptest.NewRecorder()}
	rw := in.Wrap(w, httptest.NewRequest("GET", "/", nil))
	rw.Header().Set("Content-Type", "text/html")
	rw.Write([]byte(page[:20]))
	rw.Write([]byte(page[20:]))
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	if want := len(page) + len(in.Tag(nil, "")); len(w.sizes) == 0 || w.sizes[0] != want {
		t.Errorf("writes %v, want the whole page and tag (%d bytes) in the first", w.sizes, want)
	}
}

// A compressed page that the origin flushes mid-way reaches the client
// decodable up to the flush: the encoder is flushed too.
func TestReencodedPageFlushes(t *testing.T) {
	in := newTestInjector(t, Options{Src: testSrc})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rw := in.Wrap(rec, req)
	rw.Header().Set("Content-Type", "text/html")
	rw.Header().Set("Content-Encoding", "gzip")
	var up bytes.Buffer
	zw := gzip.NewWriter(&up)
	head := "<!doctype html><html><head><title>t</title>"
	zw.Write([]byte(head))
	zw.Flush()
	rw.Write(up.Bytes())
	up.Reset()
	rw.Flush()
	zr, err := gzip.NewReader(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want := head + in.Tag(nil, "")
	got := make([]byte, len(want))
	if _, err := io.ReadFull(zr, got); err != nil || string(got) != want {
		t.Fatalf("after the flush the client decodes %q, %v; want %q", got, err, want)
	}
	zw.Write([]byte("</head><body>rest</body></html>"))
	zw.Close()
	rw.Write(up.Bytes())
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	if got := decodeBody(t, "gzip", rec.Body.Bytes()); got != want+"</head><body>rest</body></html>" {
		t.Errorf("whole page %q", got)
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
