package caddymodule

import (
	"net/http"
	"testing"

	"go.uber.org/zap"

	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
)

// Short names for the shared whole-server helpers.
var (
	freePort       = testcaddy.FreePort
	adapt          = testcaddy.Adapt
	startCaddy     = testcaddy.Start
	startCaddyfile = testcaddy.StartCaddyfile
)

func get(t testing.TB, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	return testcaddy.Get(t, url, headers...)
}

func nopLogger() *zap.Logger { return zap.NewNop() }
