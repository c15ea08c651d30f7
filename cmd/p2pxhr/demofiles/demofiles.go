// Package demofiles is the origin of the demo site and the bench: the
// http.handlers.p2pxhr_demo_files handler and its Caddyfile directive, which
// serve large files generated deterministically instead of committed. Only
// the repository's own binary (cmd/p2pxhr) and tests import it; a Caddy
// built with the plugin (xcaddy) does not carry it.
package demofiles

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func init() {
	caddy.RegisterModule(DemoFiles{})
	httpcaddyfile.RegisterHandlerDirective("p2pxhr_demo_files", parseDemoFiles)
	httpcaddyfile.RegisterDirectiveOrder("p2pxhr_demo_files", httpcaddyfile.Before, "file_server")
}

// demoModTime is the fixed Last-Modified of the generated files, so their
// validators are the same on every start and every machine.
var demoModTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// DemoFiles is the origin of the demo site: it serves large files made
// deterministically from a seed rather than committed to the repository.
// `demo.bin` is Size pseudo-random bytes (AES-CTR keystream, so any range
// is computed directly); `picture.png` is a generated image. Other names
// under its route are 404.
type DemoFiles struct {
	// Size of demo.bin in bytes. Default: 48MiB.
	Size int64 `json:"size,omitempty"`
	// Seed makes a different, equally deterministic file. Default: 1.
	Seed uint64 `json:"seed,omitempty"`

	picture     []byte
	pictureOnce *sync.Once
}

// CaddyModule returns the Caddy module information.
func (DemoFiles) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.p2pxhr_demo_files",
		New: func() caddy.Module { return new(DemoFiles) },
	}
}

// Provision fills defaults.
func (d *DemoFiles) Provision(caddy.Context) error {
	if d.Size == 0 {
		d.Size = 48 << 20
	}
	if d.Seed == 0 {
		d.Seed = 1
	}
	d.pictureOnce = new(sync.Once)
	return nil
}

// Validate checks the size.
func (d *DemoFiles) Validate() error {
	if d.Size < 0 {
		return fmt.Errorf("p2pxhr_demo_files: size %d is negative", d.Size)
	}
	return nil
}

// ServeHTTP serves demo.bin and picture.png with full range support.
func (d *DemoFiles) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	var content io.ReadSeeker
	switch name := path.Base(r.URL.Path); name {
	case "demo.bin":
		content = io.NewSectionReader(newKeystream(d.Seed), 0, d.Size)
		w.Header().Set("Content-Type", "application/octet-stream")
	case "picture.png":
		d.pictureOnce.Do(func() { d.picture = demoPicture(d.Seed) })
		content = bytes.NewReader(d.picture)
	default:
		return caddyhttp.Error(http.StatusNotFound, fmt.Errorf("no demo file %q", name))
	}
	w.Header().Set("ETag", fmt.Sprintf(`"demo-%d-%d-%s"`, d.Seed, d.Size, strings.TrimSuffix(path.Base(r.URL.Path), path.Ext(r.URL.Path))))
	w.Header().Set("Cache-Control", "public, max-age=3600")
	http.ServeContent(w, r, path.Base(r.URL.Path), demoModTime, content)
	return nil
}

// keystream is an io.ReaderAt over an AES-CTR keystream: byte i depends
// only on the seed and i, so a range is computed without the rest.
type keystream struct{ block cipher.Block }

func newKeystream(seed uint64) *keystream {
	var key [16]byte
	binary.BigEndian.PutUint64(key[:], seed)
	block, _ := aes.NewCipher(key[:]) // a 16-byte key never fails
	return &keystream{block: block}
}

func (k *keystream) ReadAt(p []byte, off int64) (int, error) {
	var iv [aes.BlockSize]byte
	binary.BigEndian.PutUint64(iv[8:], uint64(off/aes.BlockSize))
	stream := cipher.NewCTR(k.block, iv[:])
	skip := int(off % aes.BlockSize)
	if skip > 0 {
		var discard [aes.BlockSize]byte
		stream.XORKeyStream(discard[:skip], discard[:skip])
	}
	clear(p)
	stream.XORKeyStream(p, p)
	return len(p), nil
}

// demoPicture draws a colourful image with enough grain that its PNG is a
// few megabytes: big enough to be worth sharing.
func demoPicture(seed uint64) []byte {
	const w, h = 1280, 800
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)/w, float64(y)/h
			wave := math.Sin(fx*9+math.Cos(fy*7)*2) * 0.5
			grain := uint8(rng.IntN(48))
			img.SetRGBA(x, y, color.RGBA{
				R: uint8(120+100*wave) + grain/2,
				G: uint8(60+150*fy) + grain/3,
				B: uint8(200-120*fx) + grain/2,
				A: 255,
			})
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img) // writing to memory cannot fail
	return buf.Bytes()
}

func parseDemoFiles(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	d := new(DemoFiles)
	return d, d.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile sets up the demo origin. Syntax:
//
//	p2pxhr_demo_files {
//	    size <size>
//	    seed <number>
//	}
func (d *DemoFiles) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	disp.Next()
	for disp.NextBlock(0) {
		switch disp.Val() {
		case "size":
			var raw string
			if !disp.Args(&raw) {
				return disp.ArgErr()
			}
			v, err := humanize.ParseBytes(raw)
			if err != nil || v > 1<<40 {
				return disp.Errf("size: %q is not a size such as 48MiB", raw)
			}
			d.Size = int64(v)
		case "seed":
			var raw string
			if !disp.Args(&raw) {
				return disp.ArgErr()
			}
			if _, err := fmt.Sscan(raw, &d.Seed); err != nil {
				return disp.Errf("seed: %q is not a number", raw)
			}
		default:
			return disp.Errf("unknown p2pxhr_demo_files subdirective %q; expected size or seed", disp.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*DemoFiles)(nil)
	_ caddy.Validator             = (*DemoFiles)(nil)
	_ caddyhttp.MiddlewareHandler = (*DemoFiles)(nil)
	_ caddyfile.Unmarshaler       = (*DemoFiles)(nil)
)
