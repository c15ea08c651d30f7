package inject

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"path"
	"strings"
)

// DefaultHoldLimit is how many bytes of a page may be held back while the
// insertion point is still undecided, unless Options.HoldLimit says otherwise.
const DefaultHoldLimit = 64 << 10

// Attr is one attribute written on the tag, in order. An empty Value is
// written as name="" (valid in both HTML and XHTML).
type Attr struct {
	Name  string
	Value string
}

// Decoder opens a decompressing reader over a Content-Encoding it names,
// e.g. brotli or zstd supplied by the caller.
type Decoder func(r io.Reader) (io.ReadCloser, error)

// Options configure an Injector.
type Options struct {
	// Src is the URL of the client script, e.g. "/_p2pxhr/client.js".
	// Required. A page whose head already has a <script> with this src
	// (ignoring any query string) is left alone.
	Src string

	// Attrs are written on every tag after src, in order (data-* options
	// for the client, async, defer, ...).
	Attrs []Attr

	// RequestAttrs, when set, returns more attributes for one request (an
	// A/B group, say); they follow Attrs.
	RequestAttrs func(r *http.Request) []Attr

	// OnInject, when set, is called once for each response that gets the
	// tag, just before its headers go out, so the caller can add headers
	// that belong only on pages carrying the client (an A/B cookie).
	OnInject func(h http.Header, r *http.Request)

	// Integrity is an optional Subresource Integrity value for the script
	// ("sha384-..."). When set the tag also carries crossorigin.
	Integrity string

	// CrossOrigin is the crossorigin value used with Integrity; default
	// "anonymous".
	CrossOrigin string

	// Exclude lists request paths never injected: path.Match patterns
	// ("/admin/*.html"), and patterns ending in "/*" also match everything
	// below that folder at any depth ("/docs/*"). The Caddy module does
	// not use it: its inject_exclude is a Caddy path matcher, applied
	// before Wrap.
	Exclude []string

	// Decoders add Content-Encodings the injector can read, keyed by the
	// lower-case coding name ("br", "zstd"). gzip, x-gzip and deflate are
	// built in; an entry here replaces the built-in one, and a nil entry
	// turns a coding off.
	Decoders map[string]Decoder

	// Encoders compress a page again with the coding its upstream used,
	// keyed by the lower-case coding name, so a page compressed before the
	// injector stays compressed after it whatever wraps the response.
	// gzip, x-gzip and deflate are built in; an entry here replaces the
	// built-in one, and a nil entry turns a coding off: such pages go out
	// decoded, without Content-Encoding, for an outer encoder to compress.
	Encoders map[string]Encoder

	// HoldLimit bounds the bytes held back while the insertion point is
	// undecided; DefaultHoldLimit when zero.
	HoldLimit int
}

// Injector inserts the client tag into HTML responses. It is safe for
// concurrent use; each response gets its own ResponseWriter from Wrap.
type Injector struct {
	opts      Options
	decoders  map[string]Decoder
	encoders  map[string]Encoder
	holdLimit int
	staticTag string // the tag's attributes after src, before per-request parts
}

// New checks opts and returns an Injector.
func New(opts Options) (*Injector, error) {
	if strings.TrimSpace(opts.Src) == "" {
		return nil, errors.New("inject: Options.Src is required")
	}
	for _, p := range opts.Exclude {
		if _, err := path.Match(p, "/"); err != nil {
			return nil, fmt.Errorf("inject: exclude pattern %q: %w", p, err)
		}
	}
	for _, a := range opts.Attrs {
		if err := checkAttrName(a.Name); err != nil {
			return nil, err
		}
	}
	if opts.CrossOrigin == "" {
		opts.CrossOrigin = "anonymous"
	}
	in := &Injector{opts: opts, holdLimit: opts.HoldLimit, decoders: map[string]Decoder{}, encoders: map[string]Encoder{}}
	if in.holdLimit <= 0 {
		in.holdLimit = DefaultHoldLimit
	}
	for name, d := range builtinDecoders {
		in.decoders[name] = d
	}
	for name, d := range opts.Decoders {
		if d == nil {
			delete(in.decoders, strings.ToLower(name)) // nil turns a coding off
			continue
		}
		in.decoders[strings.ToLower(name)] = d
	}
	for name, e := range builtinEncoders {
		in.encoders[name] = e
	}
	for name, e := range opts.Encoders {
		if e == nil {
			delete(in.encoders, strings.ToLower(name))
			continue
		}
		in.encoders[strings.ToLower(name)] = e
	}
	var b strings.Builder
	writeAttrs(&b, opts.Attrs)
	if opts.Integrity != "" {
		writeAttrs(&b, []Attr{{"integrity", opts.Integrity}, {"crossorigin", opts.CrossOrigin}})
	}
	in.staticTag = b.String()
	return in, nil
}

// Eligible reports whether a response to r may ever be injected: a GET or
// POST, not a protocol upgrade, on a path not excluded. Wrap and
// PrepareRequest do nothing for other requests.
func (in *Injector) Eligible(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return false // HEAD has no body to inject into; others are not pages
	}
	if r.Header.Get("Upgrade") != "" {
		return false // WebSockets and friends: the writer must hijack untouched
	}
	return !in.Excluded(r.URL.Path)
}

// Excluded reports whether urlPath matches one of Options.Exclude.
func (in *Injector) Excluded(urlPath string) bool {
	for _, p := range in.opts.Exclude {
		if dir, ok := strings.CutSuffix(p, "/*"); ok && strings.HasPrefix(urlPath, dir+"/") {
			return true
		}
		if ok, _ := path.Match(p, urlPath); ok {
			return true
		}
	}
	return false
}

// Tag returns the element inserted into a response to r; nonce is the CSP
// nonce to carry, or "".
func (in *Injector) Tag(r *http.Request, nonce string) string {
	var b strings.Builder
	b.WriteString(`<script src="`)
	b.WriteString(html.EscapeString(in.opts.Src))
	b.WriteByte('"')
	b.WriteString(in.staticTag)
	if in.opts.RequestAttrs != nil && r != nil {
		attrs := in.opts.RequestAttrs(r)
		valid := attrs[:0:0]
		for _, a := range attrs {
			if checkAttrName(a.Name) == nil { // a bad name could break out of the tag
				valid = append(valid, a)
			}
		}
		writeAttrs(&b, valid)
	}
	if nonce != "" {
		writeAttrs(&b, []Attr{{"nonce", nonce}})
	}
	b.WriteString(`></script>`)
	return b.String()
}

// Strip returns page without the first occurrence of tag: the inverse of the
// insertion when tag is what the ResponseWriter reported with Tag().
func Strip(page []byte, tag string) []byte {
	i := bytes.Index(page, []byte(tag))
	if i < 0 || tag == "" {
		return page
	}
	out := make([]byte, 0, len(page)-len(tag))
	out = append(out, page[:i]...)
	return append(out, page[i+len(tag):]...)
}

func writeAttrs(b *strings.Builder, attrs []Attr) {
	for _, a := range attrs {
		b.WriteByte(' ')
		b.WriteString(a.Name)
		b.WriteString(`="`)
		b.WriteString(html.EscapeString(a.Value))
		b.WriteByte('"')
	}
}

// checkAttrName accepts the attribute names a tag can carry unescaped and
// rejects the ones the injector writes itself.
func checkAttrName(name string) error {
	if name == "" {
		return errors.New("inject: empty attribute name")
	}
	for _, c := range name {
		ok := c == '-' || c == '_' || c == ':' || c == '.' ||
			'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !ok {
			return fmt.Errorf("inject: invalid attribute name %q", name)
		}
	}
	switch strings.ToLower(name) {
	case "src", "nonce", "integrity", "crossorigin":
		return fmt.Errorf("inject: attribute %q is set by the injector", name)
	}
	return nil
}
