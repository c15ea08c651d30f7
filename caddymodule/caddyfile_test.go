package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestCaddyfileParsesEverySubdirective(t *testing.T) {
	d := caddyfile.NewTestDispenser(`p2pxhr {
		prefix /p2p/
		paths *.mp4 /downloads/*
		min_size 1MiB
		max_size 2GiB
		block_size 1MiB
		cache_size 64MiB
		http_rate_limit 2MB/s
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if h.Prefix != "/p2p/" || strings.Join(h.Paths, " ") != "*.mp4 /downloads/*" || *h.MinSize != 1<<20 ||
		h.MaxSize != 2<<30 || h.BlockSize != 1<<20 || h.CacheSize != 64<<20 || h.HTTPRateLimit != 2000000 {
		t.Errorf("parsed %+v", h)
	}
	d = caddyfile.NewTestDispenser("p2pxhr {\n cache_size off\n}")
	h = Handler{}
	if err := h.UnmarshalCaddyfile(d); err != nil || h.CacheSize != -1 {
		t.Errorf("cache_size off: %v, %d", err, h.CacheSize)
	}
}

func TestCaddyfileErrorsNameTheLineAndWhatWasExpected(t *testing.T) {
	tests := []struct {
		input string
		want  []string
	}{
		{"p2pxhr {\n\tprefix /a/\n\tblok_size 1MiB\n}", []string{"Testfile:3", `"blok_size"`, "expected one of", "block_size"}},
		{"p2pxhr {\n\tblock_size big\n}", []string{"Testfile:2", `"big"`, "byte size"}},
		{"p2pxhr {\n\tmax_size\n}", []string{"Testfile:2", "max_size needs a size"}},
		{"p2pxhr {\n\tpaths\n}", []string{"Testfile:2", "at least one pattern"}},
		{"p2pxhr {\n\tprefix /a/ /b/\n}", []string{"Testfile:2", "extra"}},
		{"p2pxhr /x", []string{"Testfile:1", "no arguments"}},
	}
	for _, tc := range tests {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		if err == nil {
			t.Errorf("%q: no error", tc.input)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not mention %q", tc.input, err, w)
			}
		}
	}
}

func TestValidateRejectsBadValues(t *testing.T) {
	small, big := int64(10), int64(100)
	tests := []struct {
		h    Handler
		want string
	}{
		{Handler{BlockSize: 8 << 10}, "block_size"},
		{Handler{BlockSize: 8 << 20}, "block_size"},
		{Handler{MinSize: &big, MaxSize: small}, "smaller than min_size"},
		{Handler{Prefix: "/"}, "prefix"},
		{Handler{Prefix: "/p2p*/"}, "prefix"},
		{Handler{HTTPRateLimit: -1}, "http_rate_limit"},
		{Handler{BlockSize: 16 << 10, MaxSize: 1 << 40}, "more than the limit"},
	}
	for _, tc := range tests {
		h := tc.h
		fillDefaults(&h)
		err := h.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", tc.h, err, tc.want)
		}
	}
}

func TestJSONConfigLoads(t *testing.T) {
	// The JSON an admin would write by hand, or get from `caddy adapt`.
	cfg := adapt(t, "http://127.0.0.1:1 {\n p2pxhr {\n  block_size 512KiB\n  paths *.bin\n }\n file_server\n}")
	var parsed map[string]any
	if err := json.Unmarshal(cfg, &parsed); err != nil {
		t.Fatal(err)
	}
	s := string(cfg)
	for _, want := range []string{`"handler":"p2pxhr"`, `"block_size":524288`, `"paths":["*.bin"]`} {
		if !strings.Contains(s, want) {
			t.Errorf("adapted JSON lacks %s:\n%s", want, s)
		}
	}
	// p2pxhr must come before file_server without an order option.
	if strings.Index(s, `"handler":"p2pxhr"`) > strings.Index(s, `"handler":"file_server"`) {
		t.Errorf("p2pxhr is ordered after file_server:\n%s", s)
	}
}
