//go:build !unix

package caddymodule

import "os"

// lockOwner takes no lock where flock is missing: stale directories are
// then left for the operator (they live under Caddy's data directory).
func lockOwner(dir string) (*os.File, error) { return nil, nil }

// ownerGone cannot tell without locks.
func ownerGone(dir string) (stale, known bool) { return false, false }
