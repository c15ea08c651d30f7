#!/usr/bin/env bash
# Runs every test of P2PXHR: unit, whole-server (real Caddy), real WebRTC
# peers and, where present, real headless Chromium. Installs what it needs
# on a fresh Debian machine with Go: the Go modules and Debian's chromium.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v chromium >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "== installing Debian's chromium for the browser tests"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	else
		echo "== chromium is missing and cannot be installed here: browser tests will be skipped" >&2
	fi
fi

echo "== go mod download"
go mod download

echo "== go vet"
go vet ./...


# Every fuzz target for a few seconds beyond its committed seed corpus
# (the seed corpus itself also runs as part of the ordinary tests).
fuzz_seconds=${FUZZ_SECONDS:-5}
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "== fuzz $pkg $target (${fuzz_seconds}s)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "${fuzz_seconds}s" "$pkg"
	done
done

# Last, so the closing lines are the whole suite's summary.
echo "== go test -race"
go test -race -count=1 -timeout 30m ./...
