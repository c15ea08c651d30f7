package caddymodule

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/p2pxhr/p2pxhr/protocol"
)

func TestCaddyfileUploadPolicy(t *testing.T) {
	for _, v := range []string{"always", "consent", "never"} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("p2pxhr {\n\tupload " + v + "\n}")); err != nil || h.Upload != v {
			t.Errorf("upload %s: %v, parsed %q", v, err, h.Upload)
		}
	}
	for input, want := range map[string][]string{
		"p2pxhr {\n\tprefix /a/\n\tupload sometimes\n}": {"Testfile:3", `"sometimes"`, "always, consent or never"},
		"p2pxhr {\n\tupload\n}":                         {"Testfile:2", "upload takes always, consent or never"},
		"p2pxhr {\n\tupload never always\n}":            {"Testfile:2", "extra"},
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %v, want one mentioning %q", input, err, w)
			}
		}
	}
	h := Handler{Upload: "later"}
	fillDefaults(&h)
	if err := h.Validate(); err == nil || !strings.Contains(err.Error(), "upload") {
		t.Errorf("JSON upload \"later\": %v", err)
	}
	if s := string(adapt(t, "http://127.0.0.1:1 {\n p2pxhr {\n  upload consent\n }\n file_server\n}")); !strings.Contains(s, `"upload":"consent"`) {
		t.Errorf("adapted JSON lacks the policy:\n%s", s)
	}
}

// The policy reaches clients in the welcome; seeders show on stats and
// metrics: online, the bytes they announce holding, what they uploaded.
func TestUploadPolicyAndSeedersThroughCaddy(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "f.bin"), randomBytes(600<<10, 31), 0o644); err != nil {
		t.Fatal(err)
	}
	base := startCaddy(t, "metrics /metrics\np2pxhr {\n\tdashboard\n}\nroot * "+root+"\nfile_server")
	_, m := fetchManifest(t, base, "/f.bin")
	// No upload line: the default.
	if w := welcomeOf(t, base); w.Upload != protocol.UploadAlways {
		t.Fatalf("welcome upload %q, want always", w.Upload)
	}

	full := protocol.NewBitfield(len(m.Blocks))
	for i := range m.Blocks {
		full.Set(i)
	}
	seeder := newWSPeer(t, base)
	seeder.send(&protocol.Join{Swarm: m.ID, URL: m.URL, Blocks: len(m.Blocks), Bitfield: full, Seed: true})
	seeder.recvType(protocol.TypeNeighbours)
	seeder.send(&protocol.Stats{Swarm: m.ID, BytesUploaded: 12345})
	var st struct {
		Swarm struct {
			Seeding struct {
				Peers         int   `json:"peers"`
				Members       int   `json:"members"`
				CachedBytes   int64 `json:"cachedBytes"`
				BytesUploaded int64 `json:"bytesUploaded"`
			} `json:"seeding"`
		} `json:"swarm"`
	}
	for range 100 {
		_, body := get(t, base+"/_p2pxhr/dashboard/stats")
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
		if st.Swarm.Seeding.BytesUploaded > 0 {
			break
		}
	}
	if s := st.Swarm.Seeding; s.Peers != 1 || s.Members != 1 || s.CachedBytes != m.Size || s.BytesUploaded != 12345 {
		t.Fatalf("stats seeding %+v, want 1 peer holding %d bytes, 12345 uploaded", s, m.Size)
	}
	for series, want := range map[string]float64{"p2pxhr_seeders": 1, "p2pxhr_seeder_cached_bytes": float64(m.Size), "p2pxhr_seeder_uploaded_bytes_total": 12345} {
		if v := metricValue(t, base, series); v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		}
	}
}

func TestWelcomeCarriesConfiguredPolicy(t *testing.T) {
	base := startCaddy(t, "p2pxhr {\n\tupload consent\n}\nroot * "+t.TempDir()+"\nfile_server")
	if w := welcomeOf(t, base); w.Upload != protocol.UploadConsent {
		t.Fatalf("welcome upload %q, want consent", w.Upload)
	}
}

// The persistent cache and seeding are a chunk of their own, which the
// client loads from {prefix}seeder.js at the version it was built with:
// pages that need none of it do not pay for it.
func TestSeederChunkIsServedApart(t *testing.T) {
	base := startCaddy(t, "p2pxhr\nroot * "+t.TempDir()+"\nfile_server")
	_, client := get(t, base+"/_p2pxhr/client.js")
	res, chunk := get(t, base+"/_p2pxhr/seeder.js")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") || !strings.Contains(string(chunk), "__p2pxhrSeeder") {
		t.Fatalf("seeder.js: %d %q, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(chunk))
	}
	version := strings.Trim(res.Header.Get("ETag"), `"`)
	if !strings.Contains(string(client), `"`+version+`"`) {
		t.Errorf("client.js does not name the chunk's version %s", version)
	}
	if strings.Contains(string(client), "getDirectory") || !strings.Contains(string(chunk), "getDirectory") {
		t.Error("the cache code is in client.js, or not in seeder.js")
	}
	if res, _ := get(t, base+"/_p2pxhr/seeder.js?v="+version); !strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("versioned seeder.js Cache-Control %q", res.Header.Get("Cache-Control"))
	}
}
