package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/p2pxhr/p2pxhr/internal/browsertest"
	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
)

// conformanceFile is one fixture of client/test/conformance.js, served at
// /conf/<name> with the headers given (besides file_server's own).
type conformanceFile struct {
	name    string
	body    []byte
	headers [][2]string
}

// repeatTo repeats unit until the result holds at least n bytes.
func repeatTo(unit string, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, unit, i)
	}
	return b.Bytes()
}

// conformanceFiles are big enough to be shared (min_size 16KiB below) and
// cover what decoding and headers depend on: charsets, byte order marks,
// bytes invalid in UTF-8, MIME parameters, XML and HTML, custom headers.
func conformanceFiles() []conformanceFile {
	ct := func(v string) [][2]string { return [][2]string{{"Content-Type", v}} }
	utf16le := func(s string) []byte {
		b := []byte{0xff, 0xfe}
		for _, u := range utf16.Encode([]rune(s)) {
			b = append(b, byte(u), byte(u>>8))
		}
		return b
	}
	bin := make([]byte, 256<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range bin {
		bin[i] = byte(r.Uint32())
	}
	items := make([]map[string]any, 0, 1200)
	for i := range 1200 {
		items = append(items, map[string]any{"id": i, "name": fmt.Sprintf("ünïcödé 日本 %d", i)})
	}
	data, _ := json.Marshal(map[string]any{"items": items})
	return []conformanceFile{
		// Multi-byte characters straddle the 16 KiB block boundaries.
		{name: "text.txt", body: repeatTo("line %05d: Grüße, 日本語, 🎉 — streaming text\n", 128<<10)},
		// Long enough (32 blocks at 1 MB/s) to be seen LOADING many times.
		{name: "long.txt", body: repeatTo("line %05d: Grüße, 日本語, 🎉 — a longer stream of text\n", 512<<10)},
		{name: "latin1.txt", body: repeatTo("line %05d: caf\xe9 na\xefve \x80 \x9f \xff\n", 32<<10), headers: ct("text/plain; charset=iso-8859-1")},
		// The byte order mark wins over the charset.
		{name: "bom.txt", body: append([]byte("\xef\xbb\xbf"), repeatTo("line %05d: café\n", 32<<10)...), headers: ct("text/plain; charset=windows-1252")},
		{name: "utf16.txt", body: utf16le(string(repeatTo("line %05d: café 日本\n", 20<<10))), headers: ct("text/plain")},
		{name: "invalid.txt", body: repeatTo("line %05d: ok \xc3( \xff \xe2\x82 end\n", 32<<10), headers: ct("text/plain")},
		{name: "params.txt", body: repeatTo("line %05d: caf\xe9 \x80\n", 32<<10), headers: ct(`TEXT/Plain; format=flowed; Charset="windows-1252"`)},
		// JSON is UTF-8 whatever the charset says.
		{name: "data.json", body: data, headers: ct("application/json; charset=iso-8859-1")},
		{name: "bom.json", body: append([]byte("\xef\xbb\xbf"), data...), headers: ct("application/json")},
		{name: "bad.json", body: append([]byte("{not json "), repeatTo("%05d ", 32<<10)...), headers: ct("application/json")},
		// XML without a charset is decoded by its declaration.
		{name: "doc.xml", body: []byte("<?xml version=\"1.0\" encoding=\"windows-1252\"?><root>" + string(repeatTo("<i n=\"%05d\">caf\xe9</i>", 32<<10)) + "</root>"), headers: ct("application/xml")},
		{name: "page.html", body: []byte("<!doctype html><meta charset=windows-1252><title>t</title>" + string(repeatTo("<p>%05d caf\xe9</p>", 32<<10))), headers: ct("text/html")},
		{name: "bin.dat", body: bin, headers: [][2]string{
			{"Content-Type", "application/octet-stream"},
			{"Content-Disposition", `attachment; filename="bin.dat"`},
			{"X-Custom", "hello"},
			{"+X-Multi", "one"},
			{"+X-Multi", "two"},
			{"Cache-Control", "public, max-age=60"},
		}},
		// Too small to share: delegated.
		{name: "small.txt", body: []byte("small\n")},
	}
}

// conformanceDifference is one check whose values differ.
type conformanceDifference struct {
	Scenario string `json:"scenario"`
	Check    string `json:"check"`
	Native   any    `json:"native"`
	Peer5    any    `json:"peer5"`
}

// startConformanceSite serves the suite's page and fixtures: small blocks
// and a slow origin, so every download has a LOADING phase to observe.
func startConformanceSite(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var hdr strings.Builder
	for _, f := range conformanceFiles() {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.body, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, h := range f.headers {
			fmt.Fprintf(&hdr, "\t\theader /%s %s %q\n", f.name, h[0], h[1])
		}
	}
	return testcaddy.Start(t, fmt.Sprintf(`route {
	p2pxhr {
		inject off
		min_size 16KiB
		block_size 16KiB
		http_rate_limit 1MB/s
	}
	handle_path /conf/* {
		root * %s
%s		file_server
	}
	handle {
		root * %s
		file_server
	}
}
`, dir, hdr.String(), filepath.Join(repoDir(t), "client")))
}

// conformanceResult is what runConformance() in client/test/conformance.js returns.
type conformanceResult struct {
	Checks      int                     `json:"checks"`
	Scenarios   int                     `json:"scenarios"`
	Differences []conformanceDifference `json:"differences"`
	NotCarried  []struct {
		Scenario string `json:"scenario"`
		URL      string `json:"url"`
		State    any    `json:"state"`
	} `json:"notCarried"`
}

// TestXHRConformance runs the conformance suite in Chromium and Firefox:
// every scenario with the native XMLHttpRequest and fetch and with
// peer5's, in one page, and no difference between them but those
// explained.
func TestXHRConformance(t *testing.T) {
	base := startConformanceSite(t)
	// A RegExp of scenario names, when debugging.
	only := regexp.MustCompile(os.Getenv("P2PXHR_CONFORMANCE_ONLY"))
	for _, kind := range []browsertest.Kind{browsertest.Chromium, browsertest.Firefox} {
		t.Run(string(kind), func(t *testing.T) {
			b := browsertest.Launch(t, browsertest.Options{Kind: kind})
			page := b.Open(t, base+"/test/conformance.html")
			var names []string
			page.Eval(t, time.Minute, "scenarioNames()", &names)
			// One scenario an evaluation: each is bounded in the page (30 s
			// a run), the whole suite would outlast the driver's timeout.
			var all conformanceResult
			for _, name := range names {
				if !only.MatchString(name) {
					continue
				}
				var r conformanceResult
				if err := page.EvalErr(2*time.Minute, "runConformance(["+js(name)+"])", &r); err != nil {
					// A page that hangs (a request that recurses forever) is one
					// failed check; the next scenario gets a new page.
					r = conformanceResult{Checks: 1, Scenarios: 1}
					r.Differences = append(r.Differences, conformanceDifference{Scenario: name, Check: "the scenario ends", Native: true, Peer5: err.Error()})
					page.Close()
					page = b.Open(t, base+"/test/conformance.html")
				}
				all.Checks += r.Checks
				all.Scenarios += r.Scenarios
				all.Differences = append(all.Differences, r.Differences...)
				all.NotCarried = append(all.NotCarried, r.NotCarried...)
			}
			reportConformance(t, b.Version, all)
		})
	}
}

// explainedDifferences are the differences from the native
// XMLHttpRequest that cannot be removed; client/README.md lists each with
// its reason. A check matching none of them must not differ.
var explainedDifferences = []struct {
	browser  string // a prefix of the browser's version string; "" for all
	scenario *regexp.Regexp
	check    *regexp.Regexp
	why      string
}{
	{"", regexp.MustCompile(``), regexp.MustCompile(`^event \w+: isTrusted( #\d+)?$`), "events dispatched by script are never trusted"},
	{"", regexp.MustCompile(`^responseXML of`), regexp.MustCompile(`^document (URL|documentURI|characterSet)$`),
		"responseXML is parsed with DOMParser, whose documents have the page's URL and, in Firefox, the characterSet UTF-8"},
	{"firefox/", regexp.MustCompile(`^(abort\(\)|timeout)`), regexp.MustCompile(`^(rs4|right after abort|after abort settled|after timeout): (responseURL|content-type|response|responseText)$|^LOADING responseText: each a prefix of the final text #2$`),
		"Firefox keeps parts of an aborted or timed-out response (responseURL, getResponseHeader, an empty ArrayBuffer, the text of a finished one); peer5.Request makes it a network error, as the standard and Chromium do"},
}

func explained(browser, scenario, check string) bool {
	for _, e := range explainedDifferences {
		if strings.HasPrefix(browser, e.browser) && e.scenario.MatchString(scenario) && e.check.MatchString(check) {
			return true
		}
	}
	return false
}

func reportConformance(t *testing.T, browser string, r conformanceResult) {
	t.Helper()
	n := 0
	for _, d := range r.Differences {
		if explained(browser, d.Scenario, d.Check) {
			n++
			continue
		}
		t.Errorf("%s: %s: %s: native %v, peer5 %v", browser, d.Scenario, d.Check, d.Native, d.Peer5)
	}
	t.Logf("%s: %d scenarios, %d checks, %d differ (%d explained in client/README.md)", browser, r.Scenarios, r.Checks, len(r.Differences), n)
	for _, n := range r.NotCarried {
		t.Errorf("%s: %s: peer5 delegated %s (state %v); it should carry it", browser, n.Scenario, n.URL, n.State)
	}
	if os.Getenv("P2PXHR_CONFORMANCE_ONLY") == "" && (r.Scenarios < 80 || r.Checks < 10000) {
		t.Errorf("%s: only %d scenarios and %d checks ran", browser, r.Scenarios, r.Checks)
	}
}
