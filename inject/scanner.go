package inject

import (
	"bytes"
	"io"
	"strings"

	"golang.org/x/net/html"
)

// scanner decides where the tag goes. It runs golang.org/x/net/html's
// Tokenizer over the start of the body (fed incrementally through a pump)
// and only tracks offsets: the bytes themselves are held and written by the
// ResponseWriter.
//
// Rules, in order of preference:
//  1. before </head>, or before whatever implicitly closes the head (body
//     content, <body>, a non-head element); before a <base href> in the head,
//     so that the tag's src is not resolved against a foreign base URL;
//  2. when forced early (Flush, hold limit, end of body): at the last "safe"
//     boundary seen, i.e. a token boundary in the prelude or in the head that
//     is not inside raw text (<script>, <style>, <title>, ...) or a <template>.
//     Right after <head ...> is the first safe boundary of the head.
type scanner struct {
	src   string // the client script URL, to spot a tag already present
	xhtml bool
	pump  *pump // the incremental tokenizer, started on the first write that cannot decide

	off           int64  // offset where the next token starts
	bomEnd        int64  // 3 when the body starts with a UTF-8 BOM: never insert before it
	safe          int64  // last boundary where the tag may go
	rawOpen       string // raw-text element we are inside, lower case
	templateDepth int    // <template> nesting: its content never ends the head

	fed   int64  // bytes written so far
	first []byte // the first two of them

	decided   bool
	at        int64 // insertion offset once decided
	present   bool  // insert nothing: the page already carries the tag, or must not be touched
	metaNonce string
}

func newScanner(src string, xhtml bool) *scanner {
	return &scanner{src: src, xhtml: xhtml}
}

// run tokenizes r until decided or out of tokens. With partial set, r is
// only the start of the body, and a token the tokenizer could only finish by
// hitting the end of r does not count: a "<" at the end of a chunk is not
// yet known to be text.
func (s *scanner) run(r io.Reader, partial bool) {
	er := &eofReader{r: r}
	z := html.NewTokenizer(er)
	// XHTML is XML: CDATA sections are text there, not bogus comments.
	z.AllowCDATA(s.xhtml)
	for !s.decided {
		tt := z.Next()
		if tt == html.ErrorToken || partial && er.eof {
			return
		}
		s.token(z, tt)
	}
}

// eofReader notes when its reader has run out.
type eofReader struct {
	r   io.Reader
	eof bool
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.eof = true
	}
	return n, err
}

// tryWhole is the fast path for a first write that holds the whole
// decision (the usual case: a page's head fits in one write). It needs no
// coroutine; when it cannot decide, the state is rolled back and the
// incremental path starts over with the same bytes.
func (s *scanner) tryWhole(p []byte) bool {
	saved := *s
	s.run(bytes.NewReader(p), true)
	if s.decided {
		return true
	}
	*s = saved
	return false
}

// write feeds the next bytes of the (decoded) body.
func (s *scanner) write(p []byte) {
	if s.decided {
		return
	}
	if s.fed < 2 {
		// A UTF-16 BOM means a page the charset header did not admit to;
		// inserting ASCII into it would corrupt it.
		s.first = append(s.first, p[:min(len(p), 2-int(s.fed))]...)
		if len(s.first) == 2 && (s.first[0] == 0xFE && s.first[1] == 0xFF || s.first[0] == 0xFF && s.first[1] == 0xFE) {
			s.present = true
			s.force()
			return
		}
	}
	first := s.fed == 0
	s.fed += int64(len(p))
	if first && s.tryWhole(p) {
		return
	}
	if s.pump == nil {
		s.pump = newPump(func(r io.Reader) error {
			s.run(r, false) // its reader blocks for more instead of ending
			return nil
		})
	}
	s.pump.Write(p)
}

// finish is called at the end of the body: decide at the best place found.
func (s *scanner) finish() {
	if !s.decided && s.pump != nil {
		s.pump.Close()
	}
	s.force()
}

// force decides now, at the last safe boundary (used on Flush, when the hold
// limit is reached and at the end of the body).
func (s *scanner) force() {
	if !s.decided {
		s.decide(s.safe)
	}
	if s.pump != nil {
		s.pump.abort()
	}
}

func (s *scanner) decide(at int64) {
	if at < s.bomEnd {
		at = s.bomEnd
	}
	s.decided, s.at = true, at
}

// token classifies one complete token.
func (s *scanner) token(z *html.Tokenizer, tt html.TokenType) {
	raw := z.Raw()
	start := s.off
	end := start + int64(len(raw))
	s.off = end

	if s.rawOpen != "" {
		// Only the matching end tag leaves raw text; the tokenizer guarantees
		// nothing else in there (a "</head>" in a script is text) is a tag.
		if tt == html.EndTagToken && tagName(raw) == s.rawOpen {
			s.rawOpen = ""
			s.markSafe(end)
		}
		return
	}

	switch tt {
	case html.DoctypeToken, html.CommentToken:
		s.markSafe(end)

	case html.TextToken:
		if start == 0 && bytes.HasPrefix(raw, utf8BOM) {
			s.bomEnd = int64(len(utf8BOM))
			raw = raw[len(utf8BOM):]
		}
		if s.templateDepth > 0 || isBlank(raw) {
			s.markSafe(end)
			return
		}
		s.decide(start) // text is body content

	case html.StartTagToken, html.SelfClosingTagToken:
		s.startTag(z, tagName(raw), start, end)

	case html.EndTagToken:
		name := tagName(raw)
		switch {
		case s.templateDepth > 0:
			if name == "template" {
				s.templateDepth--
				s.markSafe(end)
			}
		case name == "head", name == "body", name == "html", name == "br":
			// The parser acts on these (</br> even becomes <br>); anything
			// else is a parse error it ignores, and so do we.
			s.decide(start)
		default:
			s.markSafe(end)
		}
	}
}

func (s *scanner) startTag(z *html.Tokenizer, name string, start, end int64) {
	if s.templateDepth > 0 {
		if name == "template" {
			s.templateDepth++
		}
		s.openRaw(name)
		return
	}
	switch name {
	case "html":
		s.markSafe(end)
		return
	case "head":
		s.markSafe(end)
		return
	}
	if !headElements[name] {
		s.decide(start) // the first body element
		return
	}
	// A head-only element before any <head> implies the head: keep going
	// to its end rather than putting the tag before, say, <meta charset>.
	switch name {
	case "script":
		if src, _ := tagAttrs(z, "src"); s.isOurSrc(src) {
			s.present = true
			s.decide(start)
			return
		}
	case "base":
		if href, _ := tagAttrs(z, "href"); href != noAttr {
			s.decide(start)
			return
		}
	case "meta":
		if equiv, content := tagAttrs(z, "http-equiv", "content"); strings.EqualFold(strings.TrimSpace(equiv), "content-security-policy") && s.metaNonce == "" {
			s.metaNonce = scriptNonce(content)
		}
	case "template":
		s.templateDepth++
		return
	}
	if !s.openRaw(name) {
		s.markSafe(end)
	}
}

// openRaw mirrors the tokenizer: after these start tags (self-closing or not,
// as in browsers) everything up to the matching end tag is text.
func (s *scanner) openRaw(name string) bool {
	switch name {
	case "iframe", "noembed", "noframes", "noscript", "plaintext", "script", "style", "textarea", "title", "xmp":
		s.rawOpen = name
		return true
	}
	return false
}

func (s *scanner) markSafe(off int64) {
	if s.templateDepth == 0 && s.rawOpen == "" {
		s.safe = off
	}
}

// isOurSrc reports whether a script src names the client script, ignoring a
// query or fragment (cache busters).
func (s *scanner) isOurSrc(v string) bool {
	v = strings.TrimSpace(v)
	if v == "" {
		return false
	}
	return v == s.src || stripQuery(v) == stripQuery(s.src)
}

func stripQuery(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}

// headElements may appear in the head; any other element starts the body.
var headElements = map[string]bool{
	"base": true, "basefont": true, "bgsound": true, "link": true, "meta": true,
	"noframes": true, "noscript": true, "script": true, "style": true,
	"template": true, "title": true,
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

func isBlank(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\f', '\r':
		default:
			return false
		}
	}
	return true
}

// knownTags are the names the scanner acts on, by their lower-case form.
var knownTags = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{"html", "head", "body", "br", "template", "base", "basefont", "bgsound",
		"link", "meta", "noframes", "noscript", "script", "style", "title", "iframe", "noembed",
		"plaintext", "textarea", "xmp"} {
		m[n] = n
	}
	return m
}()

// tagName returns the lower-case name of the tag token raw when the scanner
// cares about it, and "?" for any other element. It reads the name from the
// raw bytes exactly as the tokenizer delimits it, without the copies
// Tokenizer.TagName makes.
func tagName(raw []byte) string {
	name := raw[1:] // after "<"
	if len(name) > 0 && name[0] == '/' {
		name = name[1:]
	}
	for i, c := range name {
		if c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '/' || c == '>' {
			name = name[:i]
			break
		}
	}
	if len(name) > len("plaintext") {
		return "?"
	}
	var lower [len("plaintext")]byte
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	if n, ok := knownTags[string(lower[:len(name)])]; ok {
		return n
	}
	return "?"
}

// noAttr is what tagAttrs returns for an attribute the tag does not have.
const noAttr = "\x00absent"

// tagAttrs returns the values of attributes k1 and k2 of the current start
// tag (noAttr when missing); the first of a repeated name wins, as in
// browsers.
func tagAttrs(z *html.Tokenizer, k1 string, k2 ...string) (v1, v2 string) {
	v1, v2 = noAttr, noAttr
	for {
		k, v, more := z.TagAttr()
		switch {
		case string(k) == k1 && v1 == noAttr:
			v1 = string(v)
		case len(k2) > 0 && string(k) == k2[0] && v2 == noAttr:
			v2 = string(v)
		}
		if !more {
			return v1, v2
		}
	}
}
