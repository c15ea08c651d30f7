package inject

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// benchPage builds an HTML page of about size bytes with a realistic head.
func benchPage(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">` +
		`<meta name="viewport" content="width=device-width, initial-scale=1">` +
		`<title>Benchmark page</title><link rel="stylesheet" href="/css/site.css">` +
		`<script>window.dataLayer = window.dataLayer || []; if (a < b) { /* </head> */ }</script>` +
		`<style>body{font-family:sans-serif;margin:0} .hero{padding:2em}</style></head><body>`)
	for b.Len() < size-len("</body></html>") {
		b.WriteString(`<p class="text">Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>` + "\n")
	}
	b.WriteString("</body></html>")
	return b.Bytes()
}

// discardWriter is a ResponseWriter that costs next to nothing, so the
// in-memory benchmarks measure the injector alone.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func serveHTML(page []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	}
}

// benchHTTP measures requests/s of a real loopback server, the figure the
// issue's goal (injected ≥ 0.9 × plain) is about.
func benchHTTP(b *testing.B, inject bool) {
	page := benchPage(10 << 10)
	origin := serveHTML(page)
	in := newTestInjector(b, testOptions())
	handler := http.Handler(origin)
	if inject {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := in.Wrap(w, r)
			origin(rw, r)
			rw.Close()
		})
	}
	srv := httptest.NewServer(handler)
	defer srv.Close()
	client := srv.Client()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		resp, err := client.Get(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n < int64(len(page)) {
			b.Fatalf("short body %d", n)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

func BenchmarkInject10KB(b *testing.B)      { benchHTTP(b, true) }
func BenchmarkPassthrough10KB(b *testing.B) { benchHTTP(b, false) }

// The same 10 KB page with no server around it: the injector's own cost.
func BenchmarkInjectWrapperOnly10KB(b *testing.B) {
	page := benchPage(10 << 10)
	in := newTestInjector(b, testOptions())
	r := httptest.NewRequest("GET", "/", nil)
	w := &discardWriter{h: http.Header{}}
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for range b.N {
		clear(w.h)
		rw := in.Wrap(w, r)
		serveHTML(page)(rw, r)
		rw.Close()
	}
}

func BenchmarkPassthroughWrapperOnly10KB(b *testing.B) {
	page := benchPage(10 << 10)
	r := httptest.NewRequest("GET", "/", nil)
	w := &discardWriter{h: http.Header{}}
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for range b.N {
		clear(w.h)
		serveHTML(page)(w, r)
	}
}

// A 10 MB page copied in 32 KiB writes, as a file server or proxy would,
// through the injector versus a bare io.Copy.
func BenchmarkInject10MB(b *testing.B) {
	page := benchPage(10 << 20)
	in := newTestInjector(b, testOptions())
	r := httptest.NewRequest("GET", "/", nil)
	w := &discardWriter{h: http.Header{}}
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for range b.N {
		clear(w.h)
		w.h.Set("Content-Type", "text/html")
		rw := in.Wrap(w, r)
		io.CopyBuffer(writerFunc(rw.Write), onlyReader{bytes.NewReader(page)}, buf)
		rw.Close()
	}
}

// onlyReader hides WriterTo so copies go in 32 KiB writes.
type onlyReader struct{ io.Reader }

func BenchmarkCopy10MB(b *testing.B) {
	page := benchPage(10 << 20)
	w := &discardWriter{h: http.Header{}}
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for range b.N {
		io.CopyBuffer(writerFunc(w.Write), onlyReader{bytes.NewReader(page)}, buf)
	}
}

func TestBenchPageIsInjected(t *testing.T) {
	in := newTestInjector(t, testOptions())
	rec, _ := serve(t, in, "text/html", benchPage(10<<10), nil, false)
	if !strings.Contains(rec.Body.String(), in.Tag(nil, "")+"</head>") {
		t.Fatal("benchmark page not injected before </head>")
	}
}
