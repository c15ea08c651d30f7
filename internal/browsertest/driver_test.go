package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// testPage serves a page whose script sets up one RTCPeerConnection with a
// DataChannel and exposes the steps, so two browsers can be wired up by
// relaying SDP through the test.
const testPage = `<!doctype html><title>driver</title><script>
window.rtc = {
  pc: null, got: null,
  async offer() {
    const pc = this.pc = new RTCPeerConnection();
    const dc = pc.createDataChannel('t');
    dc.onopen = () => dc.send('hello from ' + navigator.userAgent);
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    return pc.localDescription.sdp;
  },
  async answer(sdp) {
    const pc = this.pc = new RTCPeerConnection();
    pc.ondatachannel = (e) => { e.channel.onmessage = (m) => { this.got = m.data; }; };
    await pc.setRemoteDescription({type: 'offer', sdp});
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    return pc.localDescription.sdp;
  },
  async accept(sdp) { await this.pc.setRemoteDescription({type: 'answer', sdp}); return true; },
};
function gathered(pc) {
  return new Promise((ok) => {
    if (pc.iceGatheringState === 'complete') return ok();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && ok();
  });
}
</script>`

func serveTestPage(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, testPage)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// connect opens a DataChannel from offerer to answerer and returns what
// the answerer received.
func connect(t *testing.T, offerer, answerer *Page) string {
	t.Helper()
	var offer, answer string
	offerer.Eval(t, 30*time.Second, `rtc.offer()`, &offer)
	answerer.Eval(t, 30*time.Second, fmt.Sprintf(`rtc.answer(%q)`, offer), &answer)
	offerer.Eval(t, 30*time.Second, fmt.Sprintf(`rtc.accept(%q)`, answer), nil)
	var got string
	answerer.Eval(t, 30*time.Second, `new Promise((ok) => { const f = () => rtc.got ? ok(rtc.got) : setTimeout(f, 50); f(); })`, &got)
	return got
}

func TestDriverEvaluatesInEachBrowser(t *testing.T) {
	url := serveTestPage(t)
	for _, kind := range []Kind{Chromium, Firefox} {
		t.Run(string(kind), func(t *testing.T) {
			b := Launch(t, Options{Kind: kind})
			p := b.Open(t, url)
			var v struct {
				Title string
				Sum   int
				Undef any
			}
			p.Eval(t, 10*time.Second, `Promise.resolve({Title: document.title, Sum: 1 + 2, Undef: undefined})`, &v)
			if v.Title != "driver" || v.Sum != 3 || v.Undef != nil {
				t.Fatalf("got %+v", v)
			}
			if err := p.EvalErr(10*time.Second, `Promise.reject(new Error('boom'))`, nil); err == nil {
				t.Fatal("a rejected promise evaluated without error")
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Chromium and Firefox reach each other over a DataChannel on loopback,
// both ways: the driver's loopback settings work for both browsers.
func TestDriverDataChannelAcrossBrowsers(t *testing.T) {
	url := serveTestPage(t)
	chromium := Launch(t, Options{Kind: Chromium}).Open(t, url)
	firefox := Launch(t, Options{Kind: Firefox}).Open(t, url)
	if got := connect(t, chromium, firefox); got == "" {
		t.Fatal("Firefox received nothing from Chromium")
	}
	chromium2 := chromium.b.Open(t, url)
	firefox2 := firefox.b.Open(t, url)
	if got := connect(t, firefox2, chromium2); got == "" {
		t.Fatal("Chromium received nothing from Firefox")
	}
}
