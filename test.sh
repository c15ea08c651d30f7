#!/usr/bin/env bash
# Runs every test of P2PXHR: unit, whole-server (real Caddy), real WebRTC
# peers and real headless Chromium and Firefox. Installs what it needs on a
# fresh Debian machine with Go: the Go modules, Debian's chromium and
# firefox-esr, and the Node browser driver (npm, pinned by its lockfile).
#
#   ./test.sh                       everything; each fuzz target runs 5 s
#   FUZZ_SECONDS=60 ./test.sh       the same, fuzzing longer
#   ./test.sh fuzz                  only the fuzz targets, 300 s each
#   FUZZ_SECONDS=3600 ./test.sh fuzz
set -euo pipefail
cd "$(dirname "$0")"

# Every fuzz target for FUZZ_SECONDS beyond its committed seed corpus
# (the seed corpus itself also runs as part of the ordinary tests).
run_fuzz() {
	local seconds=$1
	for pkg in $(go list ./...); do
		dir=$(go list -f '{{.Dir}}' "$pkg")
		for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
			echo "== fuzz $pkg $target (${seconds}s)"
			fuzz_once "$pkg" "$target" "$seconds" || {
				# Go before 1.27 can fail a target with a bare "context
				# deadline exceeded" as -fuzztime ends (golang/go#75804):
				# no input written, nothing found. That alone is run again
				# once; anything else fails.
				grep -q 'context deadline exceeded' "$fuzz_log" && ! grep -q 'Failing input written' "$fuzz_log" || return 1
				echo "== fuzz $target: the fuzzing engine's deadline race, not a finding; again"
				fuzz_once "$pkg" "$target" "$seconds"
			}
		done
	done
}

fuzz_log=$(mktemp)
trap 'rm -f "$fuzz_log"' EXIT
fuzz_once() {
	go test -run '^$' -fuzz "^${2}\$" -fuzztime "${3}s" "$1" 2>&1 | tee "$fuzz_log"
}

if [ "${1:-}" = fuzz ]; then
	go mod download
	run_fuzz "${FUZZ_SECONDS:-300}"
	exit 0
fi

# Browsers for the browser tests: Debian's chromium and firefox-esr.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v firefox-esr >/dev/null 2>&1 || missing+=(firefox-esr)
# ip and tc (iproute2) build the network namespaces of e2e/realnet.
{ command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1; } || missing+=(iproute2)
# ffmpeg encodes the real video of the service worker tests (e2e/swsite_test.go).
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "== installing Debian's ${missing[*]} for the browser tests"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	else
		echo "== ${missing[*]} missing and cannot be installed here: those browser tests will be skipped" >&2
	fi
fi

# The Node driver (puppeteer-core) that runs Chromium and Firefox for the
# tests that chromedp cannot drive (Firefox, browsers in network namespaces).
if command -v npm >/dev/null 2>&1; then
	echo "== npm ci (browser driver)"
	npm ci --prefix internal/browsertest/driver --no-audit --no-fund --loglevel=error
	echo "== npm ci (tsc, for the client's TypeScript declarations)"
	npm ci --prefix client/test/types --no-audit --no-fund --loglevel=error
else
	echo "== npm missing: tests that need the browser driver will be skipped" >&2
fi

# With everything installed, a browser test that would skip fails instead.
if command -v chromium >/dev/null 2>&1 && command -v firefox-esr >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
	export P2PXHR_REQUIRE_BROWSERS=1
fi

echo "== go mod download"
go mod download

echo "== go vet"
go vet ./...


run_fuzz "${FUZZ_SECONDS:-5}"

# Last, so the closing lines are the whole suite's summary.
echo "== go test -race"
go test -race -count=1 -timeout 30m ./...
