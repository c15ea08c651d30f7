package e2e

import (
	"testing"
	"time"
)

// unreadableBlobs makes every Blob read of the page fail, once
// window.loseBlobs is set, as Chromium's reads fail (NotReadableError)
// when its blob storage has lost the bytes: a 1 GiB download in a tab met
// it, from its first block on, which no test here can afford to download.
// window.lostReads counts the reads it failed.
const unreadableBlobs = `(() => {
  const read = Blob.prototype.arrayBuffer;
  window.lostReads = 0;
  Blob.prototype.arrayBuffer = function () {
    if (!window.loseBlobs) return read.call(this);
    window.lostReads++;
    return Promise.reject(new DOMException('The requested file could not be read, typically due to permission problems that have occurred after a reference to a file was acquired.', 'NotReadableError'));
  };
})();`

// readBack is what the page reports after reading a shared body.
type readBack struct {
	SHA      string `json:"sha"`
	Size     int64  `json:"size"`
	FromHTTP int64  `json:"fromHttp"`
	Lost     int    `json:"lost"`
	Error    string `json:"error"`
	State    string `json:"state"`
}

// TestBlocksTheBrowserCannotReadBackComeAgain: a body whose verified
// blocks the browser can no longer read back (while the download runs, or
// once it has finished) still gives every byte, right: those blocks come
// from the origin again, verified, and are counted as HTTP bytes.
func TestBlocksTheBrowserCannotReadBackComeAgain(t *testing.T) {
	b := browser(t)
	base := startSite(t, siteOptions{fileSize: "2MiB"})
	size, sum := fileSHA256(t, base+"/files/demo.bin")
	const report = `return {sha: await sha256hex(buf), size: buf.byteLength, fromHttp: stats.bytesFromHttp, lost: window.lostReads, state: peer5.stats(u).state};`
	cases := []struct{ name, js string }{
		{"fetch, lost while the download runs", `const u = '/files/demo.bin'; window.loseBlobs = true;
			const res = await peer5.fetch(u); const buf = await res.arrayBuffer(); const stats = res.stats; ` + report},
		{"fetch, lost once the download has finished", `const u = '/files/demo.bin';
			const res = await peer5.fetch(u);
			while (peer5.stats(u).state === 'loading') await new Promise((r) => setTimeout(r, 20));
			window.loseBlobs = true; const buf = await res.arrayBuffer(); const stats = res.stats; ` + report},
		{"XMLHttpRequest arraybuffer, lost while the download runs", `const u = '/files/demo.bin'; window.loseBlobs = true;
			const x = new peer5.Request(); x.open('GET', u); x.responseType = 'arraybuffer';
			await new Promise((r) => { x.onloadend = r; x.send(); });
			if (x.status !== 200) throw new Error('status ' + x.status);
			const buf = x.response; const stats = x.stats; ` + report},
		// Text grows while the download runs: its reads fail, and those
		// blocks come again in a second round of the download.
		{"XMLHttpRequest text, lost while the download runs", `const u = '/files/demo.bin';
			const buf = await (await fetch(u, {cache: 'no-store'})).arrayBuffer(); // the browser's own
			window.loseBlobs = true;
			const x = new peer5.Request(); x.open('GET', u);
			await new Promise((r) => { x.onloadend = r; x.send(); });
			if (x.status !== 200) throw new Error('status ' + x.status);
			if (x.responseText !== new TextDecoder().decode(buf)) throw new Error('responseText differs from the bytes decoded');
			const stats = x.stats; ` + report},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := tab(t, b, base+"/test/page.html", unreadableBlobs)
			r := eval[readBack](t, ctx, 60*time.Second, `(async () => { try { `+c.js+` } catch (e) { return {error: String(e), lost: window.lostReads}; } })()`)
			t.Logf("%d bytes from HTTP for a %d-byte file, %d Blob reads failed, transfer %s", r.FromHTTP, size, r.Lost, r.State)
			if r.Error != "" {
				t.Fatalf("reading the body failed: %s (%d Blob reads failed)", r.Error, r.Lost)
			}
			if r.Size != size || r.SHA != sum {
				t.Fatalf("body: %d bytes, sha %s; want %d bytes, sha %s", r.Size, r.SHA, size, sum)
			}
			if r.Lost == 0 {
				t.Fatalf("no Blob read failed: the test did not exercise the loss")
			}
			if r.FromHTTP < 2*size {
				t.Errorf("%d bytes from HTTP; want the download's %d and the %d read again", r.FromHTTP, size, size)
			}
		})
	}
}
