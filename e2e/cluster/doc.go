// Package cluster holds the whole-system tests of the NATS backplane: two
// real Caddy nodes with the p2pxhr module, each a `p2pxhr run`
// subprocess (Caddy's config is process-global), sharing swarms through an
// embedded nats-server, with Go peers and a headless Chromium tab as
// visitors, all on loopback. The binary is built once per test run (with
// -race when the tests are). The Chromium test skips when
// /usr/bin/chromium is absent. It has no non-test code besides this file.
package cluster
