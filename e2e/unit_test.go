package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestClientUnits runs client/test/unit.html: the wire codec and the
// coordinator messages against protocol/testdata vectors, the scheduler
// with peer/scheduler_test.go's cases, hashing and the block store.
func TestClientUnits(t *testing.T) {
	b := browser(t)
	base := startSite(t, siteOptions{fileSize: "1MiB"})
	ctx := tab(t, b, base+"/test/unit.html?vectors=/vectors/")
	type result struct {
		Total    int      `json:"total"`
		Failures []string `json:"failures"`
	}
	r := eval[result](t, ctx, 20*time.Second, `new Promise((resolve) => {
		const t = setInterval(() => { if (window.unitResult) { clearInterval(t); resolve(window.unitResult); } }, 20);
	})`)
	if len(r.Failures) > 0 {
		t.Fatalf("%d of %d checks failed:\n%s", len(r.Failures), r.Total, strings.Join(r.Failures, "\n"))
	}
	if r.Total < 60 {
		t.Fatalf("only %d checks ran", r.Total)
	}
	t.Logf("%d checks passed", r.Total)
}
