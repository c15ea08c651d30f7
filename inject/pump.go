package inject

import (
	"errors"
	"io"
	"iter"
)

// errPumpStopped is what a pump's reader returns once the pump is torn down
// while its consumer still wants input.
var errPumpStopped = errors.New("inject: pump stopped")

// pump turns a pull-style consumer (the html.Tokenizer, a gzip.Reader: code
// that wants an io.Reader) into a push-style io.Writer fed by
// ResponseWriter.Write.
//
// Both the tokenizer and the stdlib decompressors keep a read error sticky,
// so they cannot be handed "no more data yet" and resumed later. Instead the
// consumer runs as a coroutine (iter.Pull): Write hands it a chunk and resumes
// it; when its reader runs dry it yields back, and Write returns. The
// hand-off is synchronous, so nothing runs concurrently with the caller, no
// locking is needed, and the chunk is never retained after Write returns.
type pump struct {
	next  func() (struct{}, bool)
	stop  func()
	chunk []byte // input not yet read by the consumer
	eof   bool   // Close was called: the reader reports io.EOF when dry
	done  bool   // the consumer has returned
	err   error  // what the consumer returned
}

// newPump starts nothing yet: the consumer first runs on the first Write or
// Close.
func newPump(consume func(r io.Reader) error) *pump {
	p := &pump{}
	seq := func(yield func(struct{}) bool) {
		p.err = consume(&pumpReader{p: p, yield: yield})
		p.done = true
	}
	p.next, p.stop = iter.Pull(seq)
	return p
}

// Write feeds b to the consumer and returns once it has read all of b and
// asked for more, or has returned. It never returns an error for the
// consumer's sake: a consumer that stopped early simply ignores the rest.
func (p *pump) Write(b []byte) (int, error) {
	if p.done || len(b) == 0 {
		return len(b), nil
	}
	p.chunk = b
	p.next()
	// The coroutine may have stopped mid-chunk; never keep the caller's bytes.
	p.chunk = nil
	return len(b), nil
}

// Close tells the consumer the input has ended, lets it finish, and returns
// its error.
func (p *pump) Close() error {
	if !p.done {
		p.eof = true
		p.next()
	}
	p.stop()
	p.done = true
	return p.err
}

// abort tears the coroutine down without letting the consumer see EOF; its
// reader returns errPumpStopped.
func (p *pump) abort() {
	p.stop()
	p.done = true
}

type pumpReader struct {
	p     *pump
	yield func(struct{}) bool
}

func (r *pumpReader) Read(b []byte) (int, error) {
	p := r.p
	for len(p.chunk) == 0 {
		if p.eof {
			return 0, io.EOF
		}
		if !r.yield(struct{}{}) {
			return 0, errPumpStopped
		}
	}
	n := copy(b, p.chunk)
	p.chunk = p.chunk[n:]
	return n, nil
}
