package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/klauspost/compress/zstd"

	"github.com/p2pxhr/p2pxhr/inject"
)

// newInjector sets up the HTML injector that adds the client tag to pages.
// It decodes and re-encodes gzip and deflate itself; brotli and zstd come
// from here, since inject imports nothing but the standard library and
// x/net. A page compressed upstream leaves compressed with the same coding,
// with or without an encode directive around the module.
func (h *Handler) newInjector() (*inject.Injector, error) {
	return inject.New(inject.Options{
		Src:   h.Prefix + "client.js?v=" + h.client.version,
		Attrs: h.tagAttrs(),
		RequestAttrs: func(r *http.Request) []inject.Attr {
			return []inject.Attr{{Name: "data-group", Value: groupOf(r).group}}
		},
		OnInject: h.markGroup,
		Decoders: map[string]inject.Decoder{
			"br": func(r io.Reader) (io.ReadCloser, error) {
				return io.NopCloser(brotli.NewReader(r)), nil
			},
			"zstd": func(r io.Reader) (io.ReadCloser, error) {
				d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
				if err != nil {
					return nil, err
				}
				return d.IOReadCloser(), nil
			},
		},
		Encoders: map[string]inject.Encoder{"br": brotliEncoder, "zstd": zstdEncoder},
	})
}

// Pages are small: middle levels compress them well at little CPU, and the
// compressors are pooled (each costs hundreds of kilobytes).
var (
	brotliEncoder = inject.PooledEncoder(func() inject.ResettableEncoder {
		return brotli.NewWriterLevel(nil, 5)
	})
	zstdEncoder = inject.PooledEncoder(func() inject.ResettableEncoder {
		e, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20)) // fixed options cannot fail
		return e
	})
)

// tagAttrs are the client's options carried on its tag, so the client
// needs no second round trip to learn them. ICE servers are not among
// them: the coordinator's welcome carries those to every client, however
// the page loads it.
func (h *Handler) tagAttrs() []inject.Attr {
	attrs := []inject.Attr{{Name: "data-prefix", Value: h.Prefix}, {Name: "data-sw", Value: h.swAttr()}}
	if len(h.Auto) > 0 {
		attrs = append(attrs, inject.Attr{Name: "data-auto", Value: strings.Join(h.Auto, " ")})
	}
	return attrs
}

// serveInjected passes a request on with its HTML response rewritten to
// carry the client tag; other responses pass through the wrapper as is.
func (h *Handler) serveInjected(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.injector == nil || !h.injector.Eligible(r) || h.injectExcluded(r) {
		return h.serveResource(w, r, next)
	}
	h.injector.PrepareRequest(r)
	r = withGroup(r, h.assignGroup(r))
	iw := h.injector.Wrap(w, r)
	err := h.serveResource(iw, r, next)
	if cerr := iw.Close(); err == nil {
		err = cerr
	}
	return err
}

// provisionInjectExclude sets up inject_exclude as a Caddy path matcher, so
// its patterns mean what they mean in paths and everywhere in Caddy
// (`*.html` matches /docs/page.html, matching ignores case).
func (h *Handler) provisionInjectExclude() error {
	if len(h.InjectExclude) == 0 {
		return nil
	}
	h.noInject = caddyhttp.MatchPath(slices.Clone(h.InjectExclude))
	if err := h.noInject.Provision(caddy.Context{}); err != nil {
		return fmt.Errorf("p2pxhr: inject_exclude: %w", err)
	}
	return nil
}

// injectExcluded reports whether r's page is left without the client tag.
func (h *Handler) injectExcluded(r *http.Request) bool {
	if len(h.noInject) == 0 {
		return false
	}
	ok, err := h.noInject.MatchWithError(r)
	return ok && err == nil
}
