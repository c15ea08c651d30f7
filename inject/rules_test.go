package inject

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

const page = "<!doctype html><html><head><title>t</title></head><body>x</body></html>"

// TestLeftAlone: every response the injector must not touch comes out
// byte for byte and header for header as the origin sent it.
func TestLeftAlone(t *testing.T) {
	in := newTestInjector(t, Options{Src: testSrc, Exclude: []string{"/admin/*", "/raw/*.html", "/exact.html"}})
	html := http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Etag": {`"v1"`}, "Accept-Ranges": {"bytes"}}
	with := func(k, v string) http.Header {
		h := html.Clone()
		h.Set(k, v)
		return h
	}
	cases := []struct {
		name   string
		method string
		path   string
		reqHdr http.Header
		status int
		header http.Header
		body   string
	}{
		{name: "HEAD", method: http.MethodHead, header: html},
		{name: "PUT", method: http.MethodPut, header: html, body: page},
		{name: "upgrade", reqHdr: http.Header{"Upgrade": {"websocket"}}, header: html, body: page},
		{name: "excluded prefix, deep", path: "/admin/a/b/index.html", header: html, body: page},
		{name: "excluded pattern", path: "/raw/page.html", header: html, body: page},
		{name: "excluded exact", path: "/exact.html", header: html, body: page},
		{name: "not html", header: http.Header{"Content-Type": {"text/plain"}}, body: page},
		{name: "json", header: http.Header{"Content-Type": {"application/json"}}, body: `{"a":"<head>"}`},
		{name: "no content type, not sniffed", header: http.Header{}, body: page},
		{name: "204", status: 204, header: html},
		{name: "205", status: 205, header: html},
		{name: "206", status: 206, header: with("Content-Range", "bytes 0-9/100"), body: page[:10]},
		{name: "304", status: 304, header: html},
		{name: "attachment", header: with("Content-Disposition", `attachment; filename="a.html"`), body: page},
		{name: "no-transform", header: with("Cache-Control", "public, No-Transform"), body: page},
		{name: "already tagged", header: html, body: `<html><head><script src="` + testSrc + `"></script></head></html>`},
		{name: "unknown encoding", header: with("Content-Encoding", "compress"), body: "\x1f\x9d binary"},
		{name: "stacked encodings", header: with("Content-Encoding", "gzip, gzip"), body: "\x1f\x8b binary"},
		{name: "utf-16 charset", header: with("Content-Type", "text/html; charset=UTF-16LE"), body: "<\x00h\x00"},
		{name: "utf-16 BOM", header: html, body: "\xff\xfe<\x00h\x00t\x00m\x00l\x00>\x00"},
		{name: "empty body", header: html},
		{name: "zero length", header: with("Content-Length", "0")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method, path, status := c.method, c.path, c.status
			if method == "" {
				method = http.MethodGet
			}
			if path == "" {
				path = "/index.html"
			}
			if status == 0 {
				status = 200
			}
			r := httptest.NewRequest(method, path, nil)
			for k, v := range c.reqHdr {
				r.Header[k] = v
			}
			rec := httptest.NewRecorder()
			rw := in.Wrap(rec, r)
			for k, v := range c.header {
				rw.Header()[k] = append([]string(nil), v...)
			}
			rw.WriteHeader(status)
			for i := 0; i < len(c.body); i += 5 { // small writes: the UTF-16 BOM check spans writes
				rw.Write([]byte(c.body[i:min(i+5, len(c.body))]))
			}
			if err := rw.Close(); err != nil {
				t.Fatal(err)
			}
			if rec.Code != status {
				t.Errorf("status %d, want %d", rec.Code, status)
			}
			if got := rec.Body.String(); got != c.body && method != http.MethodHead {
				t.Errorf("body changed:\n got %q\nwant %q", got, c.body)
			}
			for k, v := range c.header {
				if got := rec.Header()[k]; strings.Join(got, ",") != strings.Join(v, ",") {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if rw.Tag() != "" {
				t.Errorf("reported tag %q", rw.Tag())
			}
		})
	}
}

// TestHeaderRules: what an injected response's headers become.
func TestHeaderRules(t *testing.T) {
	in := newTestInjector(t, Options{Src: testSrc})
	tagLen := len(in.Tag(nil, ""))
	cases := []struct {
		name  string
		set   map[string]string
		check map[string]string // "" means absent
	}{
		{"strong etag becomes weak", map[string]string{"ETag": `"abc"`}, map[string]string{"ETag": `W/"abc"`}},
		{"weak etag stays", map[string]string{"ETag": `W/"abc"`}, map[string]string{"ETag": `W/"abc"`}},
		{"content-length fixed", map[string]string{"Content-Length": "71"}, map[string]string{"Content-Length": itoa(71 + tagLen)}},
		{"accept-ranges dropped", map[string]string{"Accept-Ranges": "bytes"}, map[string]string{"Accept-Ranges": ""}},
		{"others kept", map[string]string{"Cache-Control": "max-age=60", "Set-Cookie": "a=b", "Last-Modified": "Mon, 02 Jan 2006 15:04:05 GMT", "Vary": "Accept-Encoding"},
			map[string]string{"Cache-Control": "max-age=60", "Set-Cookie": "a=b", "Last-Modified": "Mon, 02 Jan 2006 15:04:05 GMT", "Vary": "Accept-Encoding"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rw := in.Wrap(rec, httptest.NewRequest("GET", "/", nil))
			rw.Header().Set("Content-Type", "text/html")
			for k, v := range c.set {
				rw.Header().Set(k, v)
			}
			rw.Write([]byte(page))
			rw.Close()
			for k, want := range c.check {
				if got := rec.Result().Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if !strings.Contains(rec.Body.String(), "client.js") {
				t.Error("not injected")
			}
		})
	}
	if len(page) != 71 {
		t.Fatalf("page is %d bytes; fix the Content-Length case", len(page))
	}
}

// TestContentLengthDroppedWhenUnknown: a Flush before the decision sends
// headers before the final length is known.
func TestContentLengthDroppedWhenUnknown(t *testing.T) {
	in := newTestInjector(t, Options{Src: testSrc})
	rec := httptest.NewRecorder()
	rw := in.Wrap(rec, httptest.NewRequest("GET", "/", nil))
	rw.Header().Set("Content-Type", "text/html")
	rw.Header().Set("Content-Length", "71")
	rw.WriteHeader(200)
	rw.Flush()
	rw.Write([]byte(page))
	rw.Close()
	if cl := rec.Result().Header.Get("Content-Length"); cl != "" {
		t.Errorf("Content-Length %q survived", cl)
	}
	if !rec.Flushed || !strings.Contains(rec.Body.String(), "client.js") {
		t.Errorf("flushed=%v body %q", rec.Flushed, rec.Body)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
