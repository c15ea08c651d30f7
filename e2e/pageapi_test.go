package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// captureWarnings runs before a page's scripts and keeps console.warn's
// messages in window.__warnings.
const captureWarnings = `window.__warnings = []; { const w = console.warn.bind(console);
	console.warn = (...a) => { window.__warnings.push(a.join(' ')); w(...a); }; }`

// pageAPIPages are test pages for how the client meets the page: a page's
// own window.peer5, module tags, the ES module build.
var pageAPIPages = map[string]string{
	// The page's own config object, with a field of its own, before the
	// injected tag.
	"config.html": `<!doctype html><html><head><script>
		window.__cfg = { maxPeers: 2, myField: 'x' };
		window.peer5 = { config: window.__cfg, other: 1 };
	</script></head><body>config</body></html>`,
	// Another SDK that calls itself peer5.
	"sdk.html": `<!doctype html><html><head><script>
		window.peer5 = { version: '9.9', Request: 'theirs', init() {} };
	</script></head><body>sdk</body></html>`,
	"primitive.html": `<!doctype html><html><head><script>window.peer5 = 5;</script></head><body>p</body></html>`,
	// The page loads the client itself, with options that are wrong.
	"badoptions.html": `<!doctype html><html><head>
		<script src="/_p2pxhr/client.js" data-ice-servers="stun:not-json" data-max-peers="many"></script>
	</head><body>bad</body></html>`,
	// client.js as a module script: no document.currentScript.
	"module.html": `<!doctype html><html><head>
		<script type="module" src="/_p2pxhr/client.js" data-max-peers="3" data-upload="off"></script>
	</head><body>module</body></html>`,
	// The ES module build alone (this page is excluded from injection).
	"mjs.html": `<!doctype html><html><head>
		<script type="module" src="/_p2pxhr/client.mjs" data-max-peers="4"></script>
	</head><body>mjs</body></html>`,
}

func TestClientMeetsThePage(t *testing.T) {
	dir := t.TempDir()
	for name, body := range pageAPIPages {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := browser(t)
	base := startSite(t, siteOptions{fileSize: "1MiB", dataDir: dir, inject: true, options: []string{"inject_exclude /data/mjs.html"}})
	open := func(page string) tabCtx {
		ctx := tab(t, b, base+"/data/"+page, captureWarnings)
		poll[bool](t, ctx, 10*time.Second, `!!(window.p2pxhr && window.p2pxhr.version)`)
		return ctx
	}
	check := func(ctx tabCtx, what, expr string) {
		t.Helper()
		if !eval[bool](t, ctx, 20*time.Second, expr) {
			diag := eval[string](t, ctx, 5*time.Second, `JSON.stringify({peer5: typeof window.peer5 === 'object' ? Object.keys(window.peer5) : String(window.peer5), config: window.p2pxhr && window.p2pxhr.config, warnings: window.__warnings})`)
			t.Errorf("%s: %s is false (%s)", what, expr, diag)
		}
	}

	t.Run("page config object", func(t *testing.T) {
		ctx := open("config.html")
		check(ctx, "the page's object and fields kept", `peer5.other === 1 && peer5.config === __cfg && __cfg.myField === 'x' && __cfg.maxPeers === 2 && __cfg.prefix === '/_p2pxhr/'`)
		check(ctx, "the client on it", `typeof peer5.Request === 'function' && peer5.fetch === p2pxhr.fetch && p2pxhr.config === __cfg`)
		check(ctx, "no warning", `__warnings.length === 0`)
		check(ctx, "client.mjs shares the client", `import('/_p2pxhr/client.mjs').then((m) => m.fetch === p2pxhr.fetch && m.default === p2pxhr)`)
	})
	t.Run("another SDK", func(t *testing.T) {
		ctx := open("sdk.html")
		check(ctx, "its properties kept", `peer5.version === '9.9' && peer5.Request === 'theirs' && typeof peer5.init === 'function'`)
		check(ctx, "the free ones filled, the client at p2pxhr", `peer5.fetch === p2pxhr.fetch && typeof p2pxhr.Request === 'function'`)
		check(ctx, "one warning naming the clash", `__warnings.filter((w) => w.includes('window.peer5 already has version, Request')).length === 1`)
	})
	t.Run("not an object", func(t *testing.T) {
		ctx := open("primitive.html")
		check(ctx, "left alone, warned", `peer5 === 5 && typeof p2pxhr.fetch === 'function' && __warnings.some((w) => w.includes('window.peer5 is a number'))`)
	})
	t.Run("bad options", func(t *testing.T) {
		ctx := open("badoptions.html")
		check(ctx, "defaults kept", `p2pxhr.config.maxPeers === 6 && p2pxhr.config.iceServers.length === 0`)
		check(ctx, "warned once each", `__warnings.filter((w) => w.includes('data-ice-servers')).length === 1 && __warnings.filter((w) => w.includes('data-max-peers')).length === 1`)
	})
	t.Run("client.js as a module", func(t *testing.T) {
		ctx := open("module.html")
		check(ctx, "data-* options read", `peer5.config.maxPeers === 3 && peer5.config.upload === false && peer5.config.prefix === '/_p2pxhr/'`)
	})
	t.Run("client.mjs", func(t *testing.T) {
		ctx := open("mjs.html")
		check(ctx, "no injected tag", `document.querySelectorAll('script[src*="client.js"]').length === 0`)
		check(ctx, "exports and options", `import('/_p2pxhr/client.mjs').then((m) =>
			m.default === p2pxhr && m.config.maxPeers === 4 && typeof m.Request === 'function' && typeof m.stats === 'function' && m.version === p2pxhr.version)`)
		check(ctx, "a download through it", `import('/_p2pxhr/client.mjs').then(async (m) => {
			const r = await m.fetch('/files/demo.bin');
			return r.status === 200 && (await r.arrayBuffer()).byteLength === 1 << 20 && m.stats('/files/demo.bin').state === 'ok';
		})`)
	})
	t.Run("declarations match the client", func(t *testing.T) {
		ctx := open("config.html")
		api, request := declaredMembers(t)
		got := eval[[]string](t, ctx, 5*time.Second, `Object.keys(p2pxhr).sort()`)
		if !slices.Equal(got, api) {
			t.Errorf("window.p2pxhr has %v, client.d.ts declares %v", got, api)
		}
		missing := eval[[]string](t, ctx, 5*time.Second, `(() => { const x = new p2pxhr.Request();
			return `+jsArray(request)+`.filter((k) => !(k in x)); })()`)
		if len(missing) > 0 {
			t.Errorf("client.d.ts declares Request members the client lacks: %v", missing)
		}
		// P2PXHRRequest extends XMLHttpRequest; its constructor has the constants.
		check(ctx, "Request is an XMLHttpRequest", `new p2pxhr.Request() instanceof XMLHttpRequest &&
			['UNSENT', 'OPENED', 'HEADERS_RECEIVED', 'LOADING', 'DONE'].every((k, i) => p2pxhr.Request[k] === i)`)
	})
}

// declaredMembers reads client/client.d.ts: the members of interface
// P2PXHR and those P2PXHRRequest adds to XMLHttpRequest.
func declaredMembers(t *testing.T) (api, request []string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoDir(t), "client", "client.d.ts"))
	if err != nil {
		t.Fatal(err)
	}
	body := func(start string) string {
		i := strings.Index(string(raw), start)
		if i < 0 {
			t.Fatalf("client.d.ts has no %q", start)
		}
		rest := string(raw[i:])
		return rest[:strings.Index(rest, "\n}")]
	}
	member := regexp.MustCompile(`(?m)^  (?:readonly )?([A-Za-z_]+)[?]?[:(]`)
	seen := map[string]bool{}
	for _, m := range member.FindAllStringSubmatch(body("export interface P2PXHR {"), -1) {
		if !seen[m[1]] {
			api = append(api, m[1])
			seen[m[1]] = true
		}
	}
	slices.Sort(api)
	for _, m := range member.FindAllStringSubmatch(body("export interface P2PXHRRequest extends XMLHttpRequest {"), -1) {
		if !slices.Contains(request, m[1]) {
			request = append(request, m[1])
		}
	}
	return api, request
}

func jsArray(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = js(n)
	}
	return "[" + strings.Join(quoted, ",") + "]"
}

// The declarations compile, and a page's typical TypeScript (client.js's
// globals and client.mjs's exports) type-checks against them with tsc.
func TestTypeScriptDeclarationsCompile(t *testing.T) {
	dir := filepath.Join(repoDir(t), "client", "test", "types")
	tsc := filepath.Join(dir, "node_modules", "typescript", "bin", "tsc")
	if _, err := os.Stat(tsc); err != nil {
		if os.Getenv("P2PXHR_REQUIRE_BROWSERS") != "" {
			t.Fatalf("tsc missing (npm ci --prefix client/test/types): %v", err)
		}
		t.Skip("tsc missing: npm ci --prefix client/test/types")
	}
	out, err := exec.Command("node", tsc, "-p", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("tsc: %v\n%s", err, out)
	}
}
