package inject

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"sort"
	"strings"
)

// builtinDecoders are the Content-Encodings the standard library reads.
var builtinDecoders = map[string]Decoder{
	"gzip":    openGzip,
	"x-gzip":  openGzip,
	"deflate": openDeflate,
}

func openGzip(r io.Reader) (io.ReadCloser, error) { return gzip.NewReader(r) }

// openDeflate reads HTTP "deflate", which is meant to be zlib-wrapped but is
// raw DEFLATE from some servers; the zlib header check tells them apart.
func openDeflate(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	h, err := br.Peek(2)
	if err != nil {
		return nil, err
	}
	if h[0]&0x0f == 8 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 {
		return zlib.NewReader(br)
	}
	return flate.NewReader(br), nil
}

// contentCoding returns the response's single content coding, "" for none.
// ok is false when the injector cannot read the body (an unknown coding, or
// several codings stacked).
func (in *Injector) contentCoding(h http.Header) (coding string, ok bool) {
	var codings []string
	for _, v := range h.Values("Content-Encoding") {
		for _, c := range strings.Split(v, ",") {
			c = strings.ToLower(strings.TrimSpace(c))
			if c != "" && c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	switch len(codings) {
	case 0:
		return "", true
	case 1:
		_, known := in.decoders[codings[0]]
		return codings[0], known
	}
	return "", false
}

// newDecodePump returns a writer taking the encoded body and passing the
// decoded bytes to sink as soon as the decoder yields them.
func newDecodePump(d Decoder, sink io.Writer) *pump {
	return newPump(func(r io.Reader) error {
		dr, err := d(r)
		if err != nil {
			return err
		}
		defer dr.Close()
		// A small buffer keeps latency low: decoded bytes go on as soon as
		// each compressed chunk is read.
		_, err = io.CopyBuffer(sink, dr, make([]byte, 8<<10))
		return err
	})
}

// PrepareRequest narrows r's Accept-Encoding to codings the injector can
// decode, so an upstream never sends a page it cannot read. It edits
// r.Header in place and does nothing to requests that are not Eligible or
// carry no Accept-Encoding. "*" is replaced by the decodable codings.
func (in *Injector) PrepareRequest(r *http.Request) {
	values := r.Header.Values("Accept-Encoding")
	if len(values) == 0 || !in.Eligible(r) {
		return
	}
	var kept []string
	listed := map[string]bool{}
	sawStar, starParams := false, ""
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			item = strings.TrimSpace(item)
			coding, params, _ := strings.Cut(item, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			switch {
			case coding == "*":
				sawStar, starParams = true, params
			case coding == "identity" || in.decoders[coding] != nil:
				kept = append(kept, item)
				listed[coding] = true
			default:
				listed[coding] = true // refused explicitly or unknown: never re-add via "*"
			}
		}
	}
	if sawStar {
		names := make([]string, 0, len(in.decoders))
		for name := range in.decoders {
			if !listed[name] {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			if starParams != "" {
				name += ";" + starParams
			}
			kept = append(kept, name)
		}
	}
	if len(kept) == 0 {
		kept = []string{"identity"}
	}
	r.Header.Set("Accept-Encoding", strings.Join(kept, ", "))
}
