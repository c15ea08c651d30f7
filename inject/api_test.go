package inject

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
)

func TestNonceFromCSP(t *testing.T) {
	cases := []struct {
		name   string
		header http.Header
		want   string
	}{
		{"script-src", http.Header{"Content-Security-Policy": {"script-src 'self' 'nonce-abc123'"}}, "abc123"},
		{"default-src", http.Header{"Content-Security-Policy": {"default-src 'NONCE-xyz=' 'strict-dynamic'"}}, "xyz="},
		{"script-src without nonce wins over default-src", http.Header{"Content-Security-Policy": {"default-src 'nonce-no'; script-src 'self'"}}, ""},
		{"script-src-elem first", http.Header{"Content-Security-Policy": {"script-src 'nonce-a'; script-src-elem 'nonce-b'"}}, "b"},
		{"second policy in one header", http.Header{"Content-Security-Policy": {"img-src *, script-src 'nonce-two'"}}, "two"},
		{"report-only", http.Header{"Content-Security-Policy-Report-Only": {"script-src 'nonce-ro'"}}, "ro"},
		{"no csp", http.Header{}, ""},
		{"style nonce only", http.Header{"Content-Security-Policy": {"style-src 'nonce-s'"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := nonceFromHeaders(c.header); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestTagAttributes(t *testing.T) {
	in := newTestInjector(t, Options{
		Src:   `/p/client.js?a=1&b="2"`,
		Attrs: []Attr{{"data-ice", `[{"urls":"stun:x"}]`}, {"defer", ""}},
		RequestAttrs: func(r *http.Request) []Attr {
			return []Attr{{"data-group", r.Header.Get("X-Group")}, {"bad name", "dropped"}}
		},
		Integrity: "sha384-AAAA",
	})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Group", `<b>`)
	rec := httptest.NewRecorder()
	rw := in.Wrap(rec, r)
	rw.Header().Set("Content-Type", "text/html")
	rw.Header().Set("Content-Security-Policy", "script-src 'nonce-n\"1'")
	rw.Write([]byte(page))
	rw.Close()
	want := `<script src="/p/client.js?a=1&amp;b=&#34;2&#34;" data-ice="[{&#34;urls&#34;:&#34;stun:x&#34;}]" defer="" integrity="sha384-AAAA" crossorigin="anonymous" data-group="&lt;b&gt;" nonce="n&#34;1"></script>`
	if rw.Tag() != want || !strings.Contains(rec.Body.String(), want) {
		t.Errorf("tag\n got %s\nwant %s", rw.Tag(), want)
	}
}

func TestNewRejects(t *testing.T) {
	for name, opts := range map[string]Options{
		"no src":        {},
		"bad pattern":   {Src: "/c.js", Exclude: []string{"/a/[b"}},
		"reserved attr": {Src: "/c.js", Attrs: []Attr{{"nonce", "x"}}},
		"bad attr":      {Src: "/c.js", Attrs: []Attr{{"a b", "x"}}},
		"quote in attr": {Src: "/c.js", Attrs: []Attr{{`a"`, "x"}}},
	} {
		if _, err := New(opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPrepareRequest(t *testing.T) {
	in := newTestInjector(t, Options{Src: testSrc, Exclude: []string{"/big/*"},
		Decoders: map[string]Decoder{"br": openGzip, "zstd": nil}})
	cases := []struct{ method, path, ae, want string }{
		{"GET", "/", "gzip, deflate, br, zstd", "gzip, deflate, br"},
		{"GET", "/", "zstd", "identity"},
		{"GET", "/", "br;q=1.0, zstd;q=0.9, gzip;q=0.5", "br;q=1.0, gzip;q=0.5"},
		{"GET", "/", "*", "br, deflate, gzip, x-gzip"},
		{"GET", "/", "gzip, *;q=0.1", "gzip, br;q=0.1, deflate;q=0.1, x-gzip;q=0.1"},
		{"GET", "/", "", ""},
		{"GET", "/big/file.html", "zstd", "zstd"},
		{"HEAD", "/", "zstd", "zstd"},
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, c.path, nil)
		if c.ae != "" {
			r.Header.Set("Accept-Encoding", c.ae)
		}
		in.PrepareRequest(r)
		if got := r.Header.Get("Accept-Encoding"); got != c.want {
			t.Errorf("%s %s %q: got %q, want %q", c.method, c.path, c.ae, got, c.want)
		}
	}
}

// TestWriterSemantics: the wrapper behaves like a net/http ResponseWriter.
func TestWriterSemantics(t *testing.T) {
	in := newTestInjector(t, Options{Src: testSrc})
	newRW := func() (*httptest.ResponseRecorder, *ResponseWriter) {
		rec := httptest.NewRecorder()
		rw := in.Wrap(rec, httptest.NewRequest("GET", "/", nil))
		rw.Header().Set("Content-Type", "text/html")
		return rec, rw
	}

	t.Run("write without WriteHeader is 200", func(t *testing.T) {
		rec, rw := newRW()
		rw.Write([]byte(page))
		rw.Close()
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), testSrc) {
			t.Errorf("code %d body %q", rec.Code, rec.Body)
		}
	})
	t.Run("first WriteHeader wins", func(t *testing.T) {
		rec, rw := newRW()
		rw.WriteHeader(404)
		rw.WriteHeader(500)
		rw.Write([]byte(page))
		rw.WriteHeader(502)
		rw.Close()
		if rec.Code != 404 || !strings.Contains(rec.Body.String(), testSrc) {
			t.Errorf("code %d body %q", rec.Code, rec.Body)
		}
	})
	t.Run("1xx passes through, final status still injected", func(t *testing.T) {
		// httptest.ResponseRecorder has no notion of 1xx: use a real server.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := in.Wrap(w, r)
			rw.Header().Set("Link", "</style.css>; rel=preload")
			rw.WriteHeader(http.StatusEarlyHints)
			rw.Header().Set("Content-Type", "text/html")
			rw.WriteHeader(200)
			rw.Write([]byte(page))
			rw.Close()
		}))
		defer srv.Close()
		got1xx := 0
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, _ textproto.MIMEHeader) error { got1xx = code; return nil },
		})
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got1xx != 103 || resp.StatusCode != 200 || !strings.Contains(string(body), testSrc) {
			t.Errorf("1xx %d, code %d, body %q", got1xx, resp.StatusCode, body)
		}
	})
	t.Run("write after Close", func(t *testing.T) {
		_, rw := newRW()
		rw.Write([]byte(page))
		if err := rw.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := rw.Write([]byte("x")); !errors.Is(err, ErrClosed) {
			t.Errorf("err %v", err)
		}
		if err := rw.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
	t.Run("flush passes through", func(t *testing.T) {
		rec, rw := newRW()
		rw.Write([]byte("<html><head>"))
		var _ http.Flusher = rw
		if err := http.NewResponseController(rw).Flush(); err != nil {
			t.Fatal(err)
		}
		if !rec.Flushed || !strings.Contains(rec.Body.String(), testSrc) {
			t.Errorf("flushed %v body %q", rec.Flushed, rec.Body)
		}
		rw.Close()
	})
	t.Run("unwrap", func(t *testing.T) {
		rec, rw := newRW()
		if rw.Unwrap() != http.ResponseWriter(rec) {
			t.Error("Unwrap does not return the wrapped writer")
		}
	})
	t.Run("no body at all", func(t *testing.T) {
		rec, rw := newRW()
		rw.Close()
		if rec.Body.Len() != 0 {
			t.Errorf("body %q", rec.Body)
		}
	})
}

// readFromRecorder records whether ReadFrom was used.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	used bool
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.used = true
	return io.Copy(r.ResponseRecorder.Body, src)
}

func TestReadFromKeepsFastPathForBypass(t *testing.T) {
	in := newTestInjector(t, Options{Src: testSrc})
	data := bytes.Repeat([]byte("binary"), 10000)

	rec := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
	rw := in.Wrap(rec, httptest.NewRequest("GET", "/big.bin", nil))
	rw.Header().Set("Content-Type", "application/octet-stream")
	io.Copy(rw, io.LimitReader(bytes.NewReader(data), int64(len(data)))) // LimitReader: no WriterTo
	rw.Close()
	if !rec.used || !bytes.Equal(rec.Body.Bytes(), data) {
		t.Errorf("ReadFrom used %v, body intact %v", rec.used, bytes.Equal(rec.Body.Bytes(), data))
	}

	rec = &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
	rw = in.Wrap(rec, httptest.NewRequest("GET", "/", nil))
	rw.Header().Set("Content-Type", "text/html")
	io.Copy(rw, io.LimitReader(strings.NewReader(page), int64(len(page))))
	rw.Close()
	if rec.used || !strings.Contains(rec.Body.String(), testSrc) {
		t.Errorf("HTML went around the injector: used %v body %q", rec.used, rec.Body)
	}
}

func TestStrip(t *testing.T) {
	in := newTestInjector(t, Options{Src: testSrc})
	rec, rw := serve(t, in, "text/html", []byte(page), []int{3}, false)
	if got := Strip(rec.Body.Bytes(), rw.Tag()); string(got) != page {
		t.Errorf("Strip gave %q", got)
	}
	if got := Strip([]byte(page), "<nope>"); string(got) != page {
		t.Errorf("Strip without tag changed the page")
	}
}

func TestOnInjectRunsOnlyForPagesThatGetTheTag(t *testing.T) {
	calls := 0
	in, err := New(Options{Src: "/c.js", OnInject: func(h http.Header, r *http.Request) {
		calls++
		h.Set("X-Injected", "yes")
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := serve(t, in, "text/html", []byte("<html><head></head><body>x</body></html>"), nil, false)
	if rec.Header().Get("X-Injected") != "yes" || calls != 1 {
		t.Errorf("page: header %q after %d calls", rec.Header().Get("X-Injected"), calls)
	}
	rec, _ = serve(t, in, "image/png", []byte("not a page"), nil, false)
	if rec.Header().Get("X-Injected") != "" || calls != 1 {
		t.Errorf("image: header %q after %d calls", rec.Header().Get("X-Injected"), calls)
	}
	rec, _ = serve(t, in, "text/html", []byte(`<html><head><script src="/c.js"></script></head></html>`), nil, false)
	if rec.Header().Get("X-Injected") != "" || calls != 1 {
		t.Errorf("page already carrying the tag: header %q after %d calls", rec.Header().Get("X-Injected"), calls)
	}
}
