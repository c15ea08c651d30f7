package caddymodule

import (
	"container/list"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// rangeCache keeps whole copies of resource versions on disk, so Range
// requests can be answered when the upstream ignores Range. It is an LRU
// bounded by total bytes, copies being filled included: a fill reserves
// its length before its first byte is written. Each cache owns a fresh
// directory, locked for as long as its process holds it (ownerLock), so a
// later start can tell the directories of dead processes and remove them.
type rangeCache struct {
	dir    string
	max    int64
	logger *zap.Logger
	owner  *os.File // the held lock on dir

	mu       sync.Mutex
	lru      *list.List // of *cachedCopy, most recent first
	entries  map[string]*list.Element
	total    int64 // committed copies
	reserved int64 // copies being filled
}

// errCacheFull: copies being filled already take the room a new one needs.
var errCacheFull = errors.New("p2pxhr: range cache full of copies being filled")

// cachedCopy is one resource version stored on disk.
type cachedCopy struct {
	key  string
	path string
	size int64
}

// rangeCacheKey names one version of one resource on one site: the
// site's scheme and host, the request URI, the validators and the length.
// Each field is length-prefixed, so no two different versions share a key
// whatever bytes their fields hold.
func rangeCacheKey(site, requestURI, etag, lastModified string, length int64) string {
	var b strings.Builder
	for _, f := range []string{site, requestURI, etag, lastModified, strconv.FormatInt(length, 10)} {
		b.WriteString(strconv.Itoa(len(f)))
		b.WriteByte(':')
		b.WriteString(f)
	}
	return b.String()
}

func rangeCacheDir() string {
	return filepath.Join(caddy.AppDataDir(), "p2pxhr", "ranges")
}

func newRangeCache(base string, max int64, logger *zap.Logger) (*rangeCache, error) {
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, err
	}
	removeStaleCaches(base, logger)
	// Made under another name and renamed once locked, so a sweep by
	// another process never sees it unlocked.
	tmp, err := os.MkdirTemp(base, "new-")
	if err != nil {
		return nil, err
	}
	owner, err := lockOwner(tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	dir := filepath.Join(base, "cache-"+strings.TrimPrefix(filepath.Base(tmp), "new-"))
	if err := os.Rename(tmp, dir); err != nil {
		owner.Close()
		os.RemoveAll(tmp)
		return nil, err
	}
	return &rangeCache{dir: dir, max: max, logger: logger, owner: owner, lru: list.New(), entries: make(map[string]*list.Element)}, nil
}

// ownerLockName is the file in a cache directory whose lock says its
// process is alive.
const ownerLockName = "owner.lock"

// removeStaleCaches deletes the cache directories under base that no live
// process holds (a killed Caddy never ran its cleanup), and half-made ones.
func removeStaleCaches(base string, logger *zap.Logger) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, "cache-") && !strings.HasPrefix(name, "new-") {
			continue
		}
		dir := filepath.Join(base, name)
		if stale, known := ownerGone(dir); !known || !stale {
			continue
		}
		if info, err := e.Info(); strings.HasPrefix(name, "new-") && (err != nil || time.Since(info.ModTime()) < time.Minute) {
			continue // another start may be between making it and locking it
		}
		if err := os.RemoveAll(dir); err != nil {
			logger.Warn("range cache: removing a stale directory", zap.String("dir", dir), zap.Error(err))
			continue
		}
		logger.Info("range cache: removed the directory of a process that is gone", zap.String("dir", dir))
	}
}

// open returns the stored copy for key, if any. An open file stays
// readable even if the entry is evicted meanwhile.
func (c *rangeCache) open(key string) (*os.File, bool) {
	c.mu.Lock()
	el, ok := c.entries[key]
	if ok {
		c.lru.MoveToFront(el)
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	f, err := os.Open(el.Value.(*cachedCopy).path)
	if err != nil {
		return nil, false
	}
	return f, true
}

// create starts a new copy of size bytes, reserving its room first
// (evicting the least recently used copies as needed); the caller writes
// it, then commits or discards it with the same size. It fails with
// errCacheFull when copies being filled leave no room.
func (c *rangeCache) create(size int64) (*os.File, error) {
	c.mu.Lock()
	if size > c.max || c.reserved+size > c.max {
		c.mu.Unlock()
		return nil, errCacheFull
	}
	for c.total+c.reserved+size > c.max {
		c.removeLocked(c.lru.Back())
	}
	c.reserved += size
	c.mu.Unlock()
	f, err := os.CreateTemp(c.dir, "fill-")
	if err != nil {
		c.unreserve(size)
	}
	return f, err
}

func (c *rangeCache) unreserve(size int64) {
	c.mu.Lock()
	c.reserved -= size
	c.mu.Unlock()
}

// commit adds a finished copy of the size create reserved under key.
func (c *rangeCache) commit(key string, f *os.File, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reserved -= size
	if el, ok := c.entries[key]; ok {
		c.removeLocked(el)
	}
	c.entries[key] = c.lru.PushFront(&cachedCopy{key: key, path: f.Name(), size: size})
	c.total += size
}

func (c *rangeCache) removeLocked(el *list.Element) {
	cc := c.lru.Remove(el).(*cachedCopy)
	delete(c.entries, cc.key)
	c.total -= cc.size
	if err := os.Remove(cc.path); err != nil {
		c.logger.Warn("range cache: removing a copy", zap.Error(err))
	}
}

// discard drops a copy that was not filled, and its reservation.
func (c *rangeCache) discard(f *os.File, size int64) {
	f.Close()
	os.Remove(f.Name())
	c.unreserve(size)
}

// close removes the cache directory and everything in it.
func (c *rangeCache) close() error {
	err := os.RemoveAll(c.dir)
	if c.owner != nil {
		c.owner.Close()
	}
	return err
}
