package caddymodule

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
)

const benchFileSize = 64 << 20

// BenchmarkManifestBuild measures building a manifest of a 64 MiB file
// through real Caddy and file_server; compare with BenchmarkRawSHA256.
func BenchmarkManifestBuild(b *testing.B) {
	root := b.TempDir()
	if err := os.WriteFile(filepath.Join(root, "big.bin"), randomBytes(benchFileSize, 1), 0o644); err != nil {
		b.Fatal(err)
	}
	base := startCaddy(b, "p2pxhr\nroot * "+root+"\nfile_server")
	b.SetBytes(benchFileSize)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// A new query string is a new URL to the cache: every round builds.
		res, err := http.Get(fmt.Sprintf("%s/_p2pxhr/manifest?url=/big.bin%%3Fround%%3D%d", base, i))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}

// BenchmarkRawSHA256 hashes the same bytes with crypto/sha256 alone.
func BenchmarkRawSHA256(b *testing.B) {
	data := randomBytes(benchFileSize, 1)
	b.SetBytes(benchFileSize)
	for b.Loop() {
		sha256.Sum256(data)
	}
}

// BenchmarkSmallResponse compares requests/s of 10 KB responses through a
// site with p2pxhr and through the same site without it: a non-shareable
// binary file (pure pass-through) and an HTML page (which gets the tag).
func BenchmarkSmallResponse(b *testing.B) {
	root := b.TempDir()
	if err := os.WriteFile(filepath.Join(root, "small.bin"), randomBytes(10_000, 2), 0o644); err != nil {
		b.Fatal(err)
	}
	page := "<!doctype html><html><head><title>bench</title></head><body>" + strings.Repeat("<p>lorem ipsum dolor sit amet</p>\n", 280) + "</body></html>"
	if err := os.WriteFile(filepath.Join(root, "page.html"), []byte(page), 0o644); err != nil {
		b.Fatal(err)
	}
	with, without := freePort(b), freePort(b)
	startCaddyfile(b, testcaddy.GlobalOptions()+fmt.Sprintf(`http://127.0.0.1:%d {
	p2pxhr
	root * %s
	file_server
}
http://127.0.0.1:%d {
	root * %s
	file_server
}
`, with, root, without, root), fmt.Sprintf("http://127.0.0.1:%d", with))
	for _, file := range []string{"small.bin", "page.html"} {
		for _, site := range []struct {
			name string
			port int
		}{{"with-p2pxhr", with}, {"without", without}} {
			b.Run(file+"/"+site.name, func(b *testing.B) {
				url := fmt.Sprintf("http://127.0.0.1:%d/%s", site.port, file)
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						res, err := client.Get(url)
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
					}
				})
			})
		}
	}
}
