package netnstest

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Two hosts on different networks reach each other through the router:
// a server listening in one answers a client dialling from the other, and
// the namespaces are gone once the test ends.
func TestRoutedHostsReachEachOther(t *testing.T) {
	var names []string
	t.Run("network", func(t *testing.T) {
		n := Routed(t, "server", "client")
		srv, cli := n.Host("server"), n.Host("client")
		names = []string{n.Router, srv.Name, cli.Name}
		if srv.Addr.String() != "10.77.1.2" || cli.Addr.String() != "10.77.2.2" {
			t.Fatalf("addresses %v %v", srv.Addr, cli.Addr)
		}
		ln, err := srv.Listen("tcp4", srv.Addr.String()+":8080")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, r.RemoteAddr)
		})}
		go hs.Serve(ln)
		defer hs.Close()
		res, err := cli.HTTPClient().Get("http://" + srv.Addr.String() + ":8080/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.HasPrefix(string(body), cli.Addr.String()+":") {
			t.Fatalf("server saw %q, want the client's address %v (routed, not NATed)", body, cli.Addr)
		}
		// The test's own namespace is not on these networks (whatever
		// answers there, if anything, is not our server).
		c := &http.Client{Timeout: 2 * time.Second}
		if res, err := c.Get("http://" + srv.Addr.String() + ":8080/"); err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if strings.HasPrefix(string(body), "10.77.") {
				t.Fatal("reached a namespaced server from the test's own namespace")
			}
		}
		out, err := cli.Command("ip", "route").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "default via 10.77.2.1") {
			t.Fatalf("client routes: %s %v", out, err)
		}
	})
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, name := range names {
		if strings.Contains(string(out), name) {
			t.Errorf("namespace %s left behind", name)
		}
	}
}
