package caddymodule

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// serveResource passes a request to the origin, pacing shareable responses
// by http_rate_limit and answering Range requests from the range cache
// when the origin ignored Range.
func (h *Handler) serveResource(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !h.requestMayShare(r) {
		return next.ServeHTTP(w, r)
	}
	rw := &resourceWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, h: h, req: r}
	defer rw.ended()
	err := serveStoppable(func() error { return next.ServeHTTP(rw, r) },
		func() bool { return rw.mode == modeCacheHit })
	return rw.finish(err)
}

// writerMode is what resourceWriter does with the origin's body.
type writerMode int

const (
	modeUndecided writerMode = iota
	modePass                 // not shareable: untouched
	modePaced                // shareable: through the rate limit
	modeCacheHit             // Range ignored, copy on disk: stop the origin
	modeCacheFill            // Range ignored, no copy yet: store the body
)

// errServedFromCache stops an origin whose body is not needed.
var errServedFromCache = errors.New("p2pxhr: range served from the cache")

type resourceWriter struct {
	*caddyhttp.ResponseWriterWrapper
	h    *Handler
	req  *http.Request
	mode writerMode
	// shared: counted in the load signal's responses in flight.
	shared bool

	file     *os.File // the cached copy being read or filled
	cacheKey string
	filled   int64
	expected int64
}

func (rw *resourceWriter) WriteHeader(status int) {
	if rw.mode != modeUndecided {
		return
	}
	if status < 200 {
		rw.ResponseWriterWrapper.WriteHeader(status)
		return
	}
	rw.mode = rw.decide(status)
	if rw.mode != modePass {
		rw.shared = true
		rw.h.load.begin()
	}
	if rw.mode == modePass || rw.mode == modePaced {
		rw.ResponseWriterWrapper.WriteHeader(status)
	}
}

// decide picks the mode from the origin's status and headers.
func (rw *resourceWriter) decide(status int) writerMode {
	hdr := rw.Header()
	if (status != http.StatusOK && status != http.StatusPartialContent) || responseMayShare(hdr) != "" {
		return modePass
	}
	length, err := strconv.ParseInt(hdr.Get("Content-Length"), 10, 64)
	if err == nil && status == http.StatusOK && (length < *rw.h.MinSize || length > rw.h.MaxSize) {
		return modePass
	}
	if status != http.StatusOK || rw.req.Header.Get("Range") == "" || rw.h.ranges == nil {
		return modePaced
	}
	// The origin ignored Range. Serve the range from a copy of this exact
	// version, which needs a validator and a known length to be safe.
	etag, lastMod := hdr.Get("ETag"), hdr.Get("Last-Modified")
	if err != nil || (etag == "" && lastMod == "") || length > rw.h.ranges.max {
		return modePaced
	}
	rw.cacheKey = rangeCacheKey(siteOf(rw.req), rw.req.URL.RequestURI(), etag, lastMod, length)
	rw.expected = length
	if f, ok := rw.h.ranges.open(rw.cacheKey); ok {
		rw.file = f
		return modeCacheHit
	}
	f, err := rw.h.ranges.create(length)
	if errors.Is(err, errCacheFull) {
		return modePaced // the whole body, which is correct too
	}
	if err != nil {
		rw.h.logger.Warn("range cache: cannot create a copy", zap.Error(err))
		return modePaced
	}
	rw.file = f
	return modeCacheFill
}

func (rw *resourceWriter) Write(p []byte) (int, error) {
	rw.WriteHeader(http.StatusOK)
	switch rw.mode {
	case modePaced:
		n, err := rw.h.limiter.write(rw.req.Context(), p, rw.ResponseWriterWrapper.Write)
		rw.h.countOrigin(rw.req, n)
		return n, err
	case modeCacheHit:
		return 0, errServedFromCache
	case modeCacheFill:
		if rw.filled+int64(len(p)) > rw.expected {
			return 0, errors.New("p2pxhr: origin sent more than its Content-Length")
		}
		n, err := rw.file.Write(p)
		rw.filled += int64(n)
		return n, err
	}
	return rw.ResponseWriterWrapper.Write(p)
}

// ReadFrom goes through Write, so that no body bypasses pacing or caching.
func (rw *resourceWriter) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(writerOnly{rw}, r)
}

// Flush passes flushes on while the body goes to the client.
func (rw *resourceWriter) Flush() {
	if rw.mode == modePass || rw.mode == modePaced {
		//nolint:bodyclose
		_ = http.NewResponseController(rw.ResponseWriterWrapper).Flush()
	}
}

// ended counts a shareable response finished, however it ended.
func (rw *resourceWriter) ended() {
	if rw.shared {
		rw.h.load.end()
	}
}

// finish completes a cached response once the origin is done.
func (rw *resourceWriter) finish(originErr error) error {
	switch rw.mode {
	case modeCacheFill:
		if originErr != nil || rw.filled != rw.expected {
			rw.h.ranges.discard(rw.file, rw.expected)
			if originErr != nil {
				return originErr
			}
			return caddyhttp.Error(http.StatusBadGateway, errors.New("p2pxhr: origin body shorter than its Content-Length"))
		}
		rw.h.ranges.commit(rw.cacheKey, rw.file, rw.filled)
		return rw.serveCopy()
	case modeCacheHit:
		return rw.serveCopy()
	}
	return originErr
}

// serveCopy answers the Range request from the cached copy; ServeContent
// honours Range and If-Range against the origin's ETag and Last-Modified.
func (rw *resourceWriter) serveCopy() error {
	defer rw.file.Close()
	modTime, _ := http.ParseTime(rw.Header().Get("Last-Modified"))
	rw.Header().Del("Content-Length")
	http.ServeContent(pacedWriter{rw.ResponseWriterWrapper, rw.h, rw.req}, rw.req, "", modTime, rw.file)
	return nil
}

// pacedWriter sends a body through the rate limit, counting it.
type pacedWriter struct {
	http.ResponseWriter
	h   *Handler
	req *http.Request
}

func (pw pacedWriter) Write(p []byte) (int, error) {
	n, err := pw.h.limiter.write(pw.req.Context(), p, pw.ResponseWriter.Write)
	pw.h.countOrigin(pw.req, n)
	return n, err
}

// countOrigin records bytes of a shareable resource sent from the origin.
func (h *Handler) countOrigin(r *http.Request, n int) {
	if n > 0 {
		h.origin.add(r.URL.Path, int64(n))
		h.metrics.originBytes.Add(float64(n))
		h.load.sent(n)
	}
}

// writerOnly hides every method but Write, so io.Copy cannot recurse
// into ReadFrom.
type writerOnly struct{ io.Writer }
