// Package e2e holds the whole-system tests of the browser client: a real
// Caddy with the p2pxhr module (internal/testcaddy) and real headless
// Chromium tabs driven with chromedp, on loopback. Tests skip when
// /usr/bin/chromium is absent. It has no non-test code besides this file.
package e2e
