package caddymodule

import "net/http"

// serveStoppable runs serve, absorbing the http.ErrAbortHandler panic that
// reverse_proxy raises when our writer refuses the rest of a body: the
// stop was ours, so the request goes on. Any other panic goes up.
func serveStoppable(serve func() error, stoppedByUs func() bool) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler && stoppedByUs() {
				err = nil
				return
			}
			panic(v)
		}
	}()
	return serve()
}
