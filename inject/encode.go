package inject

import (
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// EncodeWriter compresses a rewritten page on its way out. Flush pushes
// what it holds downstream (an origin that flushes wants its bytes at the
// browser now); Close ends the stream.
type EncodeWriter interface {
	io.WriteCloser
	Flush() error
}

// Encoder starts compressing into w with the content coding it is
// registered for.
type Encoder func(w io.Writer) (EncodeWriter, error)

// ResettableEncoder is a compressor that can start another stream, so
// PooledEncoder can reuse it: compressors cost hundreds of kilobytes each.
type ResettableEncoder interface {
	EncodeWriter
	Reset(w io.Writer)
}

// PooledEncoder returns an Encoder that reuses the compressors made by
// newEnc, each taken back once its stream is closed.
func PooledEncoder(newEnc func() ResettableEncoder) Encoder {
	pool := &sync.Pool{New: func() any { return newEnc() }}
	return func(w io.Writer) (EncodeWriter, error) {
		e := pool.Get().(ResettableEncoder)
		e.Reset(w)
		return &pooledWriter{ResettableEncoder: e, pool: pool}, nil
	}
}

type pooledWriter struct {
	ResettableEncoder
	pool *sync.Pool
}

// Close ends the stream and gives the compressor back; later calls do
// nothing.
func (p *pooledWriter) Close() error {
	if p.pool == nil {
		return nil
	}
	err := p.ResettableEncoder.Close()
	p.ResettableEncoder.Reset(io.Discard) // drop the reference to the response
	p.pool.Put(p.ResettableEncoder)
	p.pool = nil
	return err
}

// builtinEncoders compress a page again with the coding its upstream used,
// for the codings the standard library writes. HTTP "deflate" is zlib.
var builtinEncoders = map[string]Encoder{
	"gzip": PooledEncoder(func() ResettableEncoder {
		return gzip.NewWriter(nil)
	}),
	"deflate": PooledEncoder(func() ResettableEncoder {
		return zlib.NewWriter(nil)
	}),
}

func init() {
	builtinEncoders["x-gzip"] = builtinEncoders["gzip"]
}

// accepts reports whether r's Accept-Encoding allows coding: listed (or
// covered by "*") with a non-zero q. An upstream may send a coding it was
// not asked for; the page then goes out decoded rather than in it.
func accepts(r *http.Request, coding string) bool {
	if r == nil {
		return false
	}
	same := func(a, b string) bool {
		norm := func(s string) string { return strings.TrimPrefix(s, "x-") }
		return a == b || norm(a) == "gzip" && norm(b) == "gzip"
	}
	star, listed := false, false
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, item := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(item), ";")
			name = strings.ToLower(strings.TrimSpace(name))
			ok := true
			if q, found := strings.CutPrefix(strings.TrimSpace(params), "q="); found {
				f, err := strconv.ParseFloat(strings.TrimSpace(q), 64)
				ok = err == nil && f > 0
			}
			switch {
			case same(name, coding):
				if !ok {
					return false
				}
				listed = true
			case name == "*":
				star = ok
			}
		}
	}
	return listed || star
}
