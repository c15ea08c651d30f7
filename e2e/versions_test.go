package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// versionFile is size bytes of text lines naming version v.
func versionFile(v string, size int) []byte {
	var b []byte
	for n := 0; len(b) < size; n++ {
		b = fmt.Appendf(b, "version %s, line %08d\n", v, n)
	}
	return b[:size]
}

// TestFileChangedMidBodyFailsTheBody: the file changes at the origin while
// a page reads it. The headers and the first bytes were the old version's,
// so the body must fail as a network error — never go on with the new
// version's bytes (a file neither version is).
func TestFileChangedMidBodyFailsTheBody(t *testing.T) {
	b := browser(t)
	dir := t.TempDir()
	const size = 4 << 20
	base := startSite(t, siteOptions{rateLimit: "1MB/s", fileSize: "1MiB", dataDir: dir})
	old, next := versionFile("old", size), versionFile("new", size)
	sums := map[string]string{}
	for name, v := range map[string][]byte{"old": old, "new": next} {
		sums[shaHex(v)] = name
	}
	cases := []struct{ name, start, rest string }{
		{"fetch", `(async () => {
			const res = await peer5.fetch('/data/' + FILE);
			window.reader = res.body.getReader(); window.parts = [];
			const r = await reader.read(); parts.push(r.value); return r.value.length; })()`,
			`(async () => { try {
			for (;;) { const r = await reader.read(); if (r.done) break; parts.push(r.value); }
			const all = new Uint8Array(await new Blob(parts).arrayBuffer());
			return {sha: await sha256hex(all.buffer)};
			} catch (e) { return {error: String(e)}; } })()`},
		{"XMLHttpRequest text", `(async () => {
			const x = window.x = new peer5.Request(); x.open('GET', '/data/' + FILE);
			window.ended = new Promise((r) => { x.onloadend = r; }); x.send();
			while (x.responseText.length === 0 && x.readyState !== 4) await new Promise((r) => setTimeout(r, 10));
			return x.status === 200 || x.readyState < 4 ? x.responseText.length : -x.status; })()`,
			`(async () => { await ended;
			return x.status === 200 ? {sha: await sha256hex(x.responseText)} : {error: 'status ' + x.status}; })()`},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := fmt.Sprintf("doc%d.txt", i)
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, old, 0o644); err != nil {
				t.Fatal(err)
			}
			mt := time.Now().Add(-time.Hour)
			if err := os.Chtimes(path, mt, mt); err != nil {
				t.Fatal(err)
			}
			ctx := tab(t, b, base+"/test/page.html", "window.FILE = "+js(name)+";")
			t0 := time.Now()
			got := eval[int](t, ctx, 30*time.Second, c.start)
			if got <= 0 || got >= size {
				t.Fatalf("read %d bytes before the change (%v); want part of the file", got, time.Since(t0))
			}
			if err := os.WriteFile(path, next, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(path, mt.Add(time.Hour), mt.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			changed := time.Since(t0)
			r := eval[readBack](t, ctx, 60*time.Second, c.rest)
			t.Logf("changed %v after the request, ended %v after", changed, time.Since(t0))
			switch {
			case r.Error != "":
				t.Logf("%d bytes read before the change; then the body failed: %s", got, r.Error)
			case sums[r.SHA] != "":
				t.Logf("%d bytes read before the change; then the whole %q version", got, sums[r.SHA])
			default:
				t.Fatalf("the body is neither version of the file (sha %s): bytes of two versions mixed", r.SHA)
			}
		})
	}
}
