package caddymodule

import (
	"bytes"
	"net/http"
	"time"

	"github.com/p2pxhr/p2pxhr/client"
)

// dashboardFiles maps the dashboard's routes to its embedded files.
var dashboardFiles = map[string]struct{ file, contentType string }{
	"dashboard":     {"dashboard/dashboard.html", "text/html; charset=utf-8"},
	"dashboard.js":  {"dashboard/dashboard.js", "text/javascript; charset=utf-8"},
	"dashboard.css": {"dashboard/dashboard.css", "text/css; charset=utf-8"},
	"dashboard.svg": {"dashboard/dashboard.svg", "image/svg+xml"}, // the page's icon: no /favicon.ico 404
}

// serveDashboard answers the dashboard's routes; it reports false when the
// route is not one of them. The page reads {prefix}dashboard/stats every two
// seconds.
func (h *Handler) serveDashboard(w http.ResponseWriter, r *http.Request, route string) (bool, error) {
	f, ok := dashboardFiles[route]
	if !ok || !h.Dashboard {
		return false, nil
	}
	body, err := client.Dashboard.ReadFile(f.file)
	if err != nil {
		return true, err
	}
	hdr := w.Header()
	hdr.Set("Content-Type", f.contentType)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	return true, nil
}
