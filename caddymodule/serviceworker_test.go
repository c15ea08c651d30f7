package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestCaddyfileServiceWorker(t *testing.T) {
	for input, want := range map[string]*ServiceWorkerConfig{
		"service_worker on":          {},
		"service_worker on /":        {},
		"service_worker on /videos/": {Scope: "/videos/"},
		"service_worker off":         nil,
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("p2pxhr {\n\t" + input + "\n}"))
		if err != nil || (h.ServiceWorker == nil) != (want == nil) || (want != nil && *h.ServiceWorker != *want) {
			t.Errorf("%s: %v, parsed %+v", input, err, h.ServiceWorker)
		}
	}
	for input, want := range map[string][]string{
		"p2pxhr {\n\tprefix /a/\n\tservice_worker maybe\n}": {"Testfile:3", `"maybe"`, "neither on nor off"},
		"p2pxhr {\n\tservice_worker\n}":                     {"Testfile:2", "service_worker takes on"},
		"p2pxhr {\n\tservice_worker on videos\n}":           {"Testfile:2", "must be a path"},
		"p2pxhr {\n\tservice_worker on /v/?x\n}":            {"Testfile:2", "no query"},
		"p2pxhr {\n\tservice_worker on / /v/\n}":            {"Testfile:2", "extra"},
		"p2pxhr {\n\tservice_worker off now\n}":             {"Testfile:2", "extra"},
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %v, want one mentioning %q", input, err, w)
			}
		}
	}
	h := Handler{ServiceWorker: &ServiceWorkerConfig{Scope: "videos"}}
	fillDefaults(&h)
	if err := h.Validate(); err == nil || !strings.Contains(err.Error(), "service_worker") {
		t.Errorf("JSON scope \"videos\": %v", err)
	}
	if s := string(adapt(t, "http://127.0.0.1:1 {\n p2pxhr {\n  service_worker on /v/\n }\n file_server\n}")); !strings.Contains(s, `"service_worker":{"scope":"/v/"}`) {
		t.Errorf("adapted JSON lacks the mode:\n%s", s)
	}
}

// With the mode on, {prefix}sw.js is the worker with its configuration,
// allowed to control the whole site, and the client tag names the scope;
// with it off, the route serves a worker that removes itself, and the tag
// tells the client to unregister.
func TestServiceWorkerRoute(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "index.html"), []byte("<!doctype html><title>x</title><p>hi"), 0o644)
	for _, c := range []struct {
		option, attr, body string
	}{
		{"service_worker on", `data-sw="/"`, `self.__p2pxhrSW={"prefix":"/_p2pxhr/","paths":["/media/*"],"navigate":true,"blockSize":262144};`},
		{"service_worker on /media/", `data-sw="/media/"`, `self.__p2pxhrSW=`},
		{"", `data-sw="off"`, "removes itself"},
	} {
		// One Caddy at a time: each case is a subtest, its server ends with it.
		t.Run(c.attr, func(t *testing.T) { checkWorkerRoute(t, root, c.option, c.attr, c.body) })
	}
}

// checkWorkerRoute runs a site with option and checks sw.js (its headers,
// that it holds body, GET only) and the client tag's attr.
func checkWorkerRoute(t *testing.T, root, option, attr, body string) {
	base := startCaddy(t, fmt.Sprintf("p2pxhr {\n\tpaths /media/*\n\t%s\n}\nroot * %s\nfile_server", option, root))
	res, got := get(t, base+"/_p2pxhr/sw.js")
	if res.StatusCode != 200 || res.Header.Get("Service-Worker-Allowed") != "/" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") ||
		res.Header.Get("Cache-Control") != "no-cache" || res.Header.Get("ETag") == "" {
		t.Errorf("%q: sw.js %d %v", option, res.StatusCode, res.Header)
	}
	if !strings.Contains(string(got), body) {
		t.Errorf("%q: sw.js lacks %q: %.200s", option, body, got)
	}
	if _, page := get(t, base+"/index.html"); !strings.Contains(string(page), attr) {
		t.Errorf("%q: the client tag lacks %s: %s", option, attr, page)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/_p2pxhr/sw.js", nil)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("%q: POST sw.js: %v %v", option, res, err)
	}
}

// A report of a response the worker answered (via "sw") is counted apart
// from downloads: on the dashboard's stats and the metrics.
func TestServiceWorkerReports(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "f.bin"), randomBytes(600<<10, 43), 0o644)
	base := startCaddy(t, "p2pxhr {\n dashboard\n service_worker on\n}\nmetrics /metrics\nroot * "+root+"\nfile_server")
	_, m := fetchManifest(t, base, "/f.bin")
	report := fmt.Sprintf(`{"swarm":%q,"group":"p2p","via":"sw","bytesFromHttp":1000,"bytesFromPeers":2000,"bytesFromCache":%d,"bytesUploaded":0,"durationMs":50,"outcome":"abort"}`, m.ID, 1<<40)
	if code := postReport(t, base, report); code != http.StatusNoContent {
		t.Fatalf("worker report: %d", code)
	}
	if code := postReport(t, base, strings.Replace(report, `"sw"`, `"page"`, 1)); code != http.StatusBadRequest {
		t.Errorf("via \"page\": %d, want 400", code)
	}
	_, body := get(t, base+"/_p2pxhr/dashboard/stats")
	var st struct {
		Groups        map[string]json.RawMessage `json:"groups"`
		ServiceWorker workerTotals               `json:"serviceWorker"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	w := st.ServiceWorker
	if w.Requests != 1 || w.Outcomes["abort"] != 1 || w.BytesFromHTTP != 1000 || w.BytesFromPeers != 2000 || w.BytesFromCache != 600<<10 {
		t.Errorf("serviceWorker totals %+v; want one aborted response, 1000 from HTTP, 2000 from peers, the cache clamped to the file", w)
	}
	if v := metricValue(t, base, `p2pxhr_service_worker_bytes_total{source="peers"}`); v != 2000 {
		t.Errorf("metric of bytes from peers: %v", v)
	}
	if v := metricValue(t, base, `p2pxhr_service_worker_requests_total{outcome="abort"}`); v != 1 {
		t.Errorf("metric of responses: %v", v)
	}
	if strings.Contains(string(body), `"p2p":{"downloads":1`) {
		t.Errorf("the worker's response was counted as a download: %s", body)
	}
}
