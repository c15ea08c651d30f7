package peer

import "sync"

// goroutines tracks the goroutines a Client starts so Close can wait for
// them. Once Close waits, it refuses new ones: pion may open a DataChannel
// (whose handler starts an upload loop) while the Client closes, and a
// WaitGroup.Add at a zero count racing Wait is undefined.
type goroutines struct {
	mu      sync.Mutex
	closing bool
	wg      sync.WaitGroup
}

// Go runs f on a new goroutine unless Wait has begun, and reports whether
// it does.
func (g *goroutines) Go(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

// Wait refuses new goroutines and waits for the running ones.
func (g *goroutines) Wait() {
	g.mu.Lock()
	g.closing = true
	g.mu.Unlock()
	g.wg.Wait()
}
