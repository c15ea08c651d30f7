package inject

import (
	"net/http"
	"strings"
)

// nonceFromHeaders returns the script nonce of the response's CSP, if any.
// Enforced policies come first; a report-only nonce is still worth carrying
// so the tag does not flood the site's violation reports.
func nonceFromHeaders(h http.Header) string {
	for _, name := range []string{"Content-Security-Policy", "Content-Security-Policy-Report-Only"} {
		for _, v := range h.Values(name) {
			if n := scriptNonce(v); n != "" {
				return n
			}
		}
	}
	return ""
}

// scriptNonce finds 'nonce-XYZ' in the directive that governs <script src>
// elements: script-src-elem, else script-src, else default-src. A header
// value may hold several comma-separated policies; the first nonce wins (a
// tag can carry only one).
func scriptNonce(header string) string {
	for _, policy := range strings.Split(header, ",") {
		sources := map[string]string{}
		for _, directive := range strings.Split(policy, ";") {
			fields := strings.Fields(directive)
			if len(fields) == 0 {
				continue
			}
			name := strings.ToLower(fields[0])
			if _, dup := sources[name]; !dup { // the first occurrence wins, per CSP
				sources[name] = strings.Join(fields[1:], " ")
			}
		}
		for _, d := range []string{"script-src-elem", "script-src", "default-src"} {
			list, ok := sources[d]
			if !ok {
				continue
			}
			for _, src := range strings.Fields(list) {
				if len(src) > len("'nonce-'") && strings.HasPrefix(strings.ToLower(src), "'nonce-") && strings.HasSuffix(src, "'") {
					return src[len("'nonce-") : len(src)-1]
				}
			}
			break // the governing directive has no nonce
		}
	}
	return ""
}
