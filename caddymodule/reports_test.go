package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func postReport(t *testing.T, base string, body string, headers ...string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/_p2pxhr/stats", strings.NewReader(body))
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8") // what sendBeacon sends
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// metricValue reads one sample from Caddy's /metrics.
func metricValue(t *testing.T, base, series string) float64 {
	t.Helper()
	_, body := get(t, base+"/metrics")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+]+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func TestReportsAreValidatedClampedAndCounted(t *testing.T) {
	root := t.TempDir()
	size := 600 << 10
	os.WriteFile(filepath.Join(root, "f.bin"), randomBytes(size, 41), 0o644)
	base := startCaddy(t, "p2pxhr {\n dashboard\n}\nmetrics /metrics\nroot * "+root+"\nfile_server")
	_, m := fetchManifest(t, base, "/f.bin")
	report := func(group string, http, peers int64, ms int64, outcome string) string {
		return fmt.Sprintf(`{"swarm":%q,"group":%q,"bytesFromHttp":%d,"bytesFromPeers":%d,"bytesUploaded":0,"durationMs":%d,"outcome":%q}`,
			m.ID, group, http, peers, ms, outcome)
	}

	if code := postReport(t, base, report("p2p", 100<<10, 500<<10, 2000, "ok")); code != http.StatusNoContent {
		t.Fatalf("good report: %d", code)
	}
	// Claims beyond the resource are clamped to its size.
	if code := postReport(t, base, report("http", 1<<40, 1<<40, 4000, "ok")); code != http.StatusNoContent {
		t.Fatalf("huge report: %d", code)
	}
	bad := []struct{ name, body, reason string }{
		{"negative", report("p2p", -5, 0, 10, "ok"), "negative"},
		{"unknown swarm", strings.Replace(report("p2p", 1, 1, 10, "ok"), m.ID, strings.Repeat("ab", 32), 1), "swarm"},
		{"unknown group", report("vip", 1, 1, 10, "ok"), "group"},
		{"unknown outcome", report("p2p", 1, 1, 10, "great"), "outcome"},
		{"not JSON", "hello", "malformed"},
		{"too big", `{"swarm":"` + strings.Repeat("a", 5000) + `"}`, "size"},
	}
	for _, b := range bad {
		if code := postReport(t, base, b.body); code < 400 || code >= 500 {
			t.Errorf("%s: status %d", b.name, code)
		}
		if v := metricValue(t, base, `p2pxhr_reports_rejected_total{reason="`+b.reason+`"}`); v < 1 {
			t.Errorf("%s: not counted under reason %q", b.name, b.reason)
		}
	}
	if code := postReport(t, base, report("p2p", 1, 1, 10, "ok"), "Origin", "http://evil.example"); code != http.StatusForbidden {
		t.Errorf("cross-origin report: %d", code)
	}

	_, body := get(t, base+"/_p2pxhr/dashboard/stats")
	var stats statsReport
	if err := json.Unmarshal(body, &stats); err != nil {
		t.Fatal(err)
	}
	p2p, httpOnly := stats.Groups[GroupP2P], stats.Groups[GroupHTTP]
	if p2p.Downloads != 1 || p2p.BytesFromPeers != 500<<10 || p2p.Seconds.Median != 2 {
		t.Errorf("p2p group: %+v", p2p)
	}
	if httpOnly.BytesFromHTTP != int64(size) || httpOnly.BytesFromPeers != 0 {
		t.Errorf("clamping: http group %+v, resource %d bytes", httpOnly, size)
	}
	if v := metricValue(t, base, `p2pxhr_client_bytes_total{group="p2p",source="peers"}`); v != 500<<10 {
		t.Errorf("metrics show %v bytes from peers for p2p", v)
	}
	if v := metricValue(t, base, `p2pxhr_downloads_total{group="http",outcome="ok"}`); v != 1 {
		t.Errorf("metrics show %v http downloads", v)
	}
	if v := metricValue(t, base, `p2pxhr_manifest_requests_total{result="built"}`); v != 1 {
		t.Errorf("metrics show %v manifest builds", v)
	}

	// Flooding: past the burst, reports from one address are refused.
	refused := 0
	for range 60 {
		if postReport(t, base, report("p2p", 1, 1, 10, "ok")) == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused == 0 || metricValue(t, base, `p2pxhr_reports_rejected_total{reason="rate"}`) < float64(refused) {
		t.Errorf("flood of 60 reports: %d refused", refused)
	}
}

func TestOriginBytesAreCountedAtTheModule(t *testing.T) {
	root := t.TempDir()
	data := randomBytes(400<<10, 42)
	os.WriteFile(filepath.Join(root, "f.bin"), data, 0o644)
	base := startCaddy(t, "p2pxhr {\n dashboard\n}\nmetrics /metrics\nroot * "+root+"\nfile_server")
	get(t, base+"/f.bin")
	get(t, base+"/f.bin", "Range", "bytes=0-999")
	want := float64(len(data) + 1000)
	if v := metricValue(t, base, "p2pxhr_origin_bytes_total"); v != want {
		t.Errorf("origin bytes %v, want %v", v, want)
	}
	_, body := get(t, base+"/_p2pxhr/dashboard/stats")
	if !bytes.Contains(body, []byte(`"url":"/f.bin","bytes":`+strconv.Itoa(int(want)))) {
		t.Errorf("stats lack the top resource: %s", body)
	}
}

// TestReportTimesPerSizeClass (issue 19): download times are compared per
// size class of the resource, not mixed into one median.
func TestReportTimesPerSizeClass(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "picture.bin"), randomBytes(1400<<10, 43), 0o644)
	os.WriteFile(filepath.Join(root, "big.bin"), randomBytes(5<<20, 44), 0o644)
	base := startCaddy(t, "p2pxhr {\n dashboard\n}\nroot * "+root+"\nfile_server")
	_, pic := fetchManifest(t, base, "/picture.bin")
	_, big := fetchManifest(t, base, "/big.bin")
	for _, r := range []struct {
		id string
		ms int64
	}{{pic.ID, 300}, {pic.ID, 500}, {pic.ID, 400}, {big.ID, 12000}} {
		body := fmt.Sprintf(`{"swarm":%q,"group":"p2p","bytesFromHttp":1000,"bytesFromPeers":0,"bytesUploaded":0,"durationMs":%d,"outcome":"ok"}`, r.id, r.ms)
		if code := postReport(t, base, body); code != http.StatusNoContent {
			t.Fatalf("report: %d", code)
		}
	}
	_, body := get(t, base+"/_p2pxhr/dashboard/stats")
	var stats statsReport
	if err := json.Unmarshal(body, &stats); err != nil {
		t.Fatal(err)
	}
	sizes := stats.Groups[GroupP2P].Sizes
	if len(sizes) != 2 || sizes[0].Class != "under 4 MiB" || sizes[1].Class != "4 MiB to 64 MiB" {
		t.Fatalf("size classes %+v; want under 4 MiB, then 4 MiB to 64 MiB", sizes)
	}
	if sizes[0].Downloads != 3 || sizes[0].Seconds.Median != 0.4 || sizes[1].Downloads != 1 || sizes[1].Seconds.Median != 12 {
		t.Errorf("per class: %+v, %+v; want 3 downloads with median 0.4 s, 1 with 12 s", sizes[0], sizes[1])
	}
	if g := stats.Groups[GroupP2P]; g.Downloads != 4 {
		t.Errorf("the group has %d downloads, want all 4", g.Downloads)
	}
}
