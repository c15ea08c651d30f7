package main

import (
	"bytes"
	"sync"
	"time"
)

func init() {
	// Progress every 50ms lets tests act mid-run on what they read.
	plainInterval = 50 * time.Millisecond
}

// syncBuffer is a bytes.Buffer safe for the command's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cmdRun is the outcome of one in-process command.
type cmdRun struct {
	code           int
	err            error
	stdout, stderr *syncBuffer
}
