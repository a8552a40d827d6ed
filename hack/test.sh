#!/usr/bin/env bash
# Runs kubepki's whole test suite: formatting, vet, the test bed build, and
# every test (unit, real-kubeadm node tests, CLI scripts, fuzz seed corpora).
# This is the test command the README gives; CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt needed:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...

# Build the real kubeadm the tests run (cached; minutes the first time).
hack/testbed-build.sh >/dev/null

go test -count=1 "$@" ./...
