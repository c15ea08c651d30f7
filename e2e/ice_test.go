package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// recordRTC wraps RTCPeerConnection so a test can see the configuration
// each connection was made with.
const recordRTC = `(() => {
	const Native = window.RTCPeerConnection;
	window.rtcConfigs = [];
	window.RTCPeerConnection = function (config) { window.rtcConfigs.push(config); return new Native(config); };
	window.RTCPeerConnection.prototype = Native.prototype;
})();`

// TestICEServersReachTheClientHoweverLoaded: the coordinator's welcome
// gives every page the site's STUN server and the configured ones, whether
// the module injected the client, the page has its own tag, loads it as a
// module, or ships a bundled copy; each then connects to a seeding tab
// with them, and reports how the attempt went. The dashboard shows the
// share of attempts that worked, and where STUN listens.
func TestICEServersReachTheClientHoweverLoaded(t *testing.T) {
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stunAddr := udp.LocalAddr().String()
	udp.Close()
	b := browser(t)
	// The origin slow enough that a visitor whose connection to the seeding
	// tab takes a few seconds to open (seen under CI load) still gets bytes
	// from it: at 8 MB/s HTTP had the whole file 2 s after the start, before
	// that connection opened.
	base := startSite(t, siteOptions{rateLimit: "2MB/s", fileSize: "4MiB", inject: true, options: []string{
		"stun " + stunAddr,
		"ice_server stun:stun.example.org:3478",
		"inject_exclude /test/module.html /test/bundle.html",
		"dashboard",
	}})
	size, sum := fileSHA256(t, base+"/files/demo.bin")
	seeder := tab(t, b, base+"/test/page.html")
	if r := get(t, seeder, "peer5.Request", "/files/demo.bin", "blob"); r.Response.SHA != sum {
		t.Fatalf("seeder: sha %s", r.Response.SHA)
	}
	want := fmt.Sprintf(`[{"urls":["stun:%s"]},{"urls":["stun:stun.example.org:3478"]}]`, stunAddr)
	for _, page := range []string{"plain.html", "page.html", "module.html", "bundle.html"} {
		t.Run(page, func(t *testing.T) {
			ctx := tab(t, b, base+"/test/"+page, recordRTC)
			poll[bool](t, ctx, 20*time.Second, `!!(window.peer5 && peer5.version)`)
			r := get(t, ctx, "peer5.Request", "/files/demo.bin", "arraybuffer")
			if r.Response.SHA != sum || r.Response.Size != size {
				t.Fatalf("sha %s size %d", r.Response.SHA, r.Response.Size)
			}
			got := eval[string](t, ctx, 5*time.Second, `JSON.stringify(rtcConfigs.map((c) => c.iceServers))`)
			if !strings.HasPrefix(got, "["+want) {
				t.Fatalf("RTCPeerConnection got ICE servers %s, want %s", got, want)
			}
			if r.Stats.FromPeers == 0 {
				t.Errorf("nothing from the seeding tab (%d from HTTP)", r.Stats.FromHTTP)
			}
			n := poll[float64](t, ctx, 10*time.Second, `Object.values(peer5.stats().connections.connected).reduce((a, b) => a + b, 0)`)
			t.Logf("%s: %d from peers; connected attempts %v", page, r.Stats.FromPeers, n)
		})
	}

	dash := tab(t, b, base+"/_p2pxhr/dashboard")
	rate := poll[string](t, dash, 15*time.Second, `(() => { const v = document.getElementById('connectRate').textContent; return v.endsWith(' of 4') && v; })()`)
	ice := eval[string](t, dash, 5*time.Second, `document.getElementById('iceStatus').textContent`)
	t.Logf("dashboard: %q connected; %s", rate, ice)
	if rate != "100.0% of 4" || !strings.Contains(ice, "STUN: udp "+stunAddr) {
		t.Fatalf("dashboard shows %q and %q", rate, ice)
	}
}
