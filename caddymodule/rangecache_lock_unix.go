//go:build unix

package caddymodule

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// lockOwner creates dir's owner lock and holds it (flock, released by the
// kernel when the process dies, whatever the reason).
func lockOwner(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, ownerLockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ownerGone reports whether no process holds dir's owner lock; known is
// false when that cannot be told. A directory without a lock file was left
// by a version without locks, or by a start killed before it took its
// lock: stale either way.
func ownerGone(dir string) (stale, known bool) {
	f, err := os.OpenFile(filepath.Join(dir, ownerLockName), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return true, true
	}
	if err != nil {
		return false, false
	}
	defer f.Close() // releases the probe's lock, if taken
	switch err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); {
	case err == nil:
		return true, true
	case errors.Is(err, syscall.EWOULDBLOCK):
		return false, true
	}
	return false, false
}
