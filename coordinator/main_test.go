package coordinator

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(benchServerEnv) != "" {
		// Re-executed as the benchmark's server process (bench_test.go).
		os.Exit(runBenchServer())
	}
	goleak.VerifyTestMain(m)
}
