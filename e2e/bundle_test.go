package e2e

import (
	"bytes"
	"compress/gzip"
	"testing"

	"github.com/p2pxhr/p2pxhr/caddymodule"
)

// budget is what every page may load: the client, minified and gzipped.
const budget = 20 << 10

func TestClientBundleWithinBudget(t *testing.T) {
	body, err := caddymodule.BuildClientBundle()
	if err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	w, _ := gzip.NewWriterLevel(&z, gzip.DefaultCompression)
	w.Write(body)
	w.Close()
	t.Logf("client.js: %d bytes minified, %d gzipped (budget %d)", len(body), z.Len(), budget)
	if z.Len() > budget {
		t.Fatalf("client.js is %d bytes gzipped, over the %d budget", z.Len(), budget)
	}
	if !bytes.Contains(body, []byte("window.peer5")) {
		t.Error("the bundle does not set window.peer5")
	}
}
