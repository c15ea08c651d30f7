package inject

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// ErrClosed is returned by Write and ReadFrom after Close.
var ErrClosed = errors.New("inject: write after Close")

type mode int

const (
	modeUnset  mode = iota // no final status yet
	modeBypass             // everything goes to the wrapped writer untouched
	modeInject             // an HTML page: scanned, held, then streamed with the tag
)

// ResponseWriter wraps one response. For an HTML page it holds the body
// back only until the insertion point is decided (see scanner), writes the
// tag there, and from then on passes every byte and Flush straight through.
// Any other response goes through untouched.
//
// It is not safe for concurrent use, like any http.ResponseWriter, and
// Close must be called once the handler is done: it writes what is still
// held and releases the scanning coroutine.
type ResponseWriter struct {
	w  http.ResponseWriter
	r  *http.Request
	in *Injector

	mode       mode
	status     int
	headerSent bool // the wrapped writer's WriteHeader has been called
	closed     bool
	err        error // sticky: a failed write downstream or a broken encoding

	decoder     *pump // non-nil when the body arrives compressed
	coding      string
	encoder     EncodeWriter // compresses the page again with coding, if it can
	scan        *scanner
	held        []byte // the body so far, until decided
	decided     bool
	declaredLen int64 // upstream Content-Length of the identity body, or -1
	tag         string
}

// Wrap returns the writer to hand to the next handler. For requests that
// are never injected (see Eligible) it only forwards; it still needs Close.
func (in *Injector) Wrap(w http.ResponseWriter, r *http.Request) *ResponseWriter {
	rw := &ResponseWriter{w: w, r: r, in: in, declaredLen: -1}
	if !in.Eligible(r) {
		rw.mode = modeBypass
	}
	return rw
}

// Header returns the wrapped writer's header map; the injector edits it
// (Content-Length, ETag, ...) just before the status goes out.
func (rw *ResponseWriter) Header() http.Header { return rw.w.Header() }

// Unwrap lets http.ResponseController reach the wrapped writer (Hijack,
// deadlines).
func (rw *ResponseWriter) Unwrap() http.ResponseWriter { return rw.w }

// Tag returns the tag written into this response, or "" if none was (yet).
func (rw *ResponseWriter) Tag() string { return rw.tag }

// WriteHeader records the status and decides whether the page is injected.
// 1xx informational statuses pass straight through; superfluous calls are
// forwarded only once the real status is out, so net/http still logs them.
func (rw *ResponseWriter) WriteHeader(code int) {
	switch {
	case rw.closed:
		return
	case rw.mode == modeBypass:
		rw.w.WriteHeader(code)
		return
	case code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols:
		rw.w.WriteHeader(code)
		return
	case rw.mode == modeInject:
		if rw.headerSent {
			rw.w.WriteHeader(code)
		}
		return
	}
	rw.status = code
	coding, xhtml, ok := rw.injectable(code)
	if !ok {
		rw.mode = modeBypass
		rw.w.WriteHeader(code) // also panics on an invalid code, like net/http
		return
	}
	rw.mode = modeInject
	rw.scan = newScanner(rw.in.opts.Src, xhtml)
	if coding != "" {
		rw.coding = coding
		rw.decoder = newDecodePump(rw.in.decoders[coding], writerFunc(rw.writeDecoded))
	} else if cl := rw.w.Header().Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			rw.declaredLen = n
		}
	}
}

// injectable applies the leave-alone rules to the final status and headers;
// coding is the Content-Encoding to decode, "" for none.
func (rw *ResponseWriter) injectable(code int) (coding string, xhtml, ok bool) {
	switch {
	case code < 200, code == http.StatusNoContent, code == http.StatusResetContent,
		code == http.StatusPartialContent, code == http.StatusNotModified:
		return "", false, false
	}
	h := rw.w.Header()
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	xhtml = mt == "application/xhtml+xml"
	if err != nil || (mt != "text/html" && !xhtml) {
		return "", false, false // nothing else is sniffed
	}
	if cs := strings.ToLower(params["charset"]); strings.HasPrefix(cs, "utf-16") || strings.HasPrefix(cs, "utf-32") {
		return "", false, false // ASCII bytes would corrupt the page
	}
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(h.Get("Content-Disposition"))), "attachment") {
		return "", false, false
	}
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "no-transform") {
				return "", false, false
			}
		}
	}
	if strings.TrimSpace(h.Get("Content-Length")) == "0" {
		return "", false, false
	}
	coding, ok = rw.in.contentCoding(h)
	return coding, xhtml, ok
}

// Write implements http.ResponseWriter. With a compressed upstream it
// reports len(p) once p has been decoded and passed on.
func (rw *ResponseWriter) Write(p []byte) (int, error) {
	if rw.closed {
		return 0, ErrClosed
	}
	if rw.mode == modeUnset {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.mode == modeBypass {
		return rw.w.Write(p)
	}
	if rw.err != nil {
		return 0, rw.err
	}
	if rw.decoder != nil {
		rw.decoder.Write(p)
		if rw.decoder.done && rw.decoder.err != nil && rw.err == nil {
			rw.err = rw.decoder.err
		}
	} else {
		rw.writeDecoded(p)
	}
	if rw.err != nil {
		return 0, rw.err
	}
	return len(p), nil
}

// writeDecoded takes the next bytes of the plain body.
func (rw *ResponseWriter) writeDecoded(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && !rw.decided && rw.err == nil {
		// Feed at most what still fits under the hold limit, so a huge
		// write is never scanned (or copied) past it.
		room := max(rw.in.holdLimit-len(rw.held), 1)
		piece := p[:min(len(p), room)]
		p = p[len(piece):]
		rw.scan.write(piece)
		if rw.scan.decided {
			rw.emit(piece)
			break
		}
		rw.held = append(rw.held, piece...)
		if len(rw.held) >= rw.in.holdLimit {
			// Past the limit: insert at the last safe boundary rather than
			// give up, so every page still gets its tag.
			rw.scan.force()
			rw.emit(nil)
		}
	}
	if len(p) > 0 && rw.err == nil {
		rw.out(p)
	}
	return n, rw.err
}

// emit writes the held bytes and piece (the bytes fed since), with the tag
// at the decided offset, and switches to pass-through.
func (rw *ResponseWriter) emit(piece []byte) {
	rw.decided = true
	if !rw.scan.present {
		nonce := nonceFromHeaders(rw.w.Header())
		if nonce == "" {
			nonce = rw.scan.metaNonce
		}
		rw.tag = rw.in.Tag(rw.r, nonce)
	}
	rw.sendHeaders()
	// One write of everything held, the tag and the rest of piece: an outer
	// encoder decides from the first write whether to compress (Caddy's
	// encode needs more than minimum_length bytes when the length is
	// unknown), and it is at least as long as the origin's first write.
	at := rw.scan.at
	held := rw.held
	rw.held = nil
	buf := firstWrites.Get().(*[]byte)
	first := (*buf)[:0]
	if at <= int64(len(held)) {
		first = append(append(append(append(first, held[:at]...), rw.tag...), held[at:]...), piece...)
	} else {
		split := at - int64(len(held))
		first = append(append(append(append(first, held...), piece[:split]...), rw.tag...), piece[split:]...)
	}
	rw.out(first)
	// A ResponseWriter must not keep what it is given: the buffer is free.
	*buf = first[:0]
	firstWrites.Put(buf)
}

// firstWrites holds the buffers emit assembles a page's first write in.
var firstWrites = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// sendHeaders fixes the headers for the rewritten page and writes the status.
func (rw *ResponseWriter) sendHeaders() {
	if rw.headerSent {
		return
	}
	rw.headerSent = true
	if rw.decided && rw.tag == "" && rw.decoder == nil {
		// Nothing changes (tag already there, empty body): leave the
		// headers as the origin sent them.
		rw.w.WriteHeader(rw.status)
		return
	}
	h := rw.w.Header()
	if rw.tag != "" && rw.in.opts.OnInject != nil {
		rw.in.opts.OnInject(h, rw.r)
	}
	if rw.decoder != nil {
		if enc := rw.in.encoders[rw.coding]; enc != nil && accepts(rw.r, rw.coding) {
			// Compressed before the injector, compressed after it.
			if e, err := enc(writerFunc(rw.writeEncoded)); err == nil {
				rw.encoder = e
			}
		}
		if rw.encoder == nil {
			h.Del("Content-Encoding") // an outer encoder may compress again
		}
	}
	// Ranges of the original bytes no longer match this representation.
	h.Del("Accept-Ranges")
	if etag := h.Get("ETag"); etag != "" && !strings.HasPrefix(etag, "W/") {
		h.Set("ETag", "W/"+etag)
	}
	if rw.decided && rw.declaredLen >= 0 {
		h.Set("Content-Length", strconv.FormatInt(rw.declaredLen+int64(len(rw.tag)), 10))
	} else {
		h.Del("Content-Length")
	}
	rw.w.WriteHeader(rw.status)
}

func (rw *ResponseWriter) out(p []byte) {
	if len(p) == 0 || rw.err != nil {
		return
	}
	var err error
	if rw.encoder != nil {
		_, err = rw.encoder.Write(p)
	} else {
		_, err = rw.w.Write(p)
	}
	if err != nil {
		rw.err = err
	}
}

// Flush implements http.Flusher. An origin that flushes wants its bytes at
// the browser now, so anything held is committed at the best insertion point
// found so far (right after <head> at worst) and sent.
func (rw *ResponseWriter) Flush() { _ = rw.FlushError() }

// FlushError is Flush reporting the wrapped writer's error; it is what
// http.ResponseController calls.
func (rw *ResponseWriter) FlushError() error {
	if rw.closed {
		return nil
	}
	if rw.mode == modeUnset {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.mode == modeInject {
		switch {
		case rw.decided:
		case len(rw.held) > 0:
			rw.scan.force()
			rw.emit(nil)
		default:
			rw.sendHeaders()
		}
		if rw.encoder != nil && rw.err == nil {
			rw.err = rw.encoder.Flush()
		}
		if rw.err != nil {
			return rw.err
		}
	}
	return http.NewResponseController(rw.w).Flush()
}

// Close finishes the response: it drains the decoder, decides where the tag
// goes if the body ended first, and writes what is held. It returns the
// first error met downstream or in decoding. Later calls return nil, and
// Write and ReadFrom return ErrClosed.
func (rw *ResponseWriter) Close() error {
	if rw.closed {
		return nil
	}
	rw.closed = true
	if rw.mode != modeInject {
		return nil
	}
	if rw.decoder != nil {
		if err := rw.decoder.Close(); err != nil && rw.err == nil {
			rw.err = err
		}
	}
	rw.scan.finish()
	if !rw.decided {
		if rw.scan.fed == 0 {
			rw.scan.present = true // an empty body stays empty
		}
		rw.emit(nil)
	}
	if rw.encoder != nil {
		// Always, so a pooled compressor goes back; its trailer reaches
		// the response only if nothing failed (writeEncoded).
		if err := rw.encoder.Close(); err != nil && rw.err == nil {
			rw.err = err
		}
	}
	return rw.err
}

// writeEncoded is where the encoder's output goes: the response, until
// something failed.
func (rw *ResponseWriter) writeEncoded(p []byte) (int, error) {
	if rw.err != nil {
		return len(p), nil
	}
	return rw.w.Write(p)
}

// ReadFrom keeps the wrapped writer's fast path (sendfile) for responses
// that pass through untouched, which includes every large non-HTML file.
func (rw *ResponseWriter) ReadFrom(src io.Reader) (int64, error) {
	if rw.closed {
		return 0, ErrClosed
	}
	if rw.mode == modeUnset {
		rw.WriteHeader(http.StatusOK)
	}
	if rf, ok := rw.w.(io.ReaderFrom); ok && rw.mode == modeBypass {
		return rf.ReadFrom(src)
	}
	return io.CopyBuffer(writerFunc(rw.Write), src, make([]byte, 32<<10))
}

// writerFunc hides every method but Write, so io.Copy cannot loop back into
// ReadFrom.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

var (
	_ http.ResponseWriter = (*ResponseWriter)(nil)
	_ http.Flusher        = (*ResponseWriter)(nil)
	_ io.ReaderFrom       = (*ResponseWriter)(nil)
)
