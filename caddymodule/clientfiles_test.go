package caddymodule

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// Beside client.js the module serves its source map, the ES module build
// with its map, and the TypeScript declarations kept in the repository.
func TestClientFilesAreServed(t *testing.T) {
	base := startCaddy(t, "p2pxhr\nrespond \"site\"")
	_, js := get(t, base+"/_p2pxhr/client.js")
	if !bytes.HasSuffix(bytes.TrimSpace(js), []byte("//# sourceMappingURL=client.js.map")) {
		t.Errorf("client.js does not point to its map: ...%s", js[max(0, len(js)-80):])
	}
	for _, name := range []string{"client.js.map", "client.mjs.map"} {
		res, body := get(t, base+"/_p2pxhr/"+name)
		var m struct {
			Version        int      `json:"version"`
			Sources        []string `json:"sources"`
			SourcesContent []string `json:"sourcesContent"`
			Mappings       string   `json:"mappings"`
		}
		if err := json.Unmarshal(body, &m); err != nil || res.StatusCode != 200 {
			t.Fatalf("%s: %d, %v", name, res.StatusCode, err)
		}
		if m.Version != 3 || m.Mappings == "" || len(m.SourcesContent) != len(m.Sources) || !slices.Contains(m.Sources, "client/src/install.js") {
			t.Errorf("%s: version %d, sources %v, %d contents", name, m.Version, m.Sources, len(m.SourcesContent))
		}
	}
	res, mjs := get(t, base+"/_p2pxhr/client.mjs")
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") || !bytes.Contains(mjs, []byte("export{")) ||
		res.Header.Get("X-TypeScript-Types") != "./client.d.ts" || res.Header.Get("ETag") == "" {
		t.Errorf("client.mjs: %v %.80s", res.Header, mjs)
	}
	want, err := os.ReadFile("../client/client.d.ts")
	if err != nil {
		t.Fatal(err)
	}
	if res, dts := get(t, base+"/_p2pxhr/client.d.ts"); !bytes.Equal(dts, want) || res.StatusCode != 200 {
		t.Errorf("client.d.ts: %d, %d bytes, want the repository's %d", res.StatusCode, len(dts), len(want))
	}
}
