#!/usr/bin/env bash
# Installs golangci-lint, which .ci/run runs with .golangci.yml, at a pinned
# version, built from the Go module proxy with `go install` into
# $(go env GOPATH)/bin. Idempotent: a binary already there at the pinned
# version is kept.
set -euo pipefail

module=github.com/golangci/golangci-lint/v2/cmd/golangci-lint
version=2.15.0

gobin="$(go env GOBIN)"
[[ -n $gobin ]] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
export GOBIN="$gobin"

if [[ -x $GOBIN/golangci-lint ]] && "$GOBIN/golangci-lint" version 2>&1 | grep -q "version $version "; then
	echo "golangci-lint $version already in $GOBIN"
else
	echo "installing golangci-lint $version into $GOBIN"
	SECONDS=0
	go install "$module@v$version"
	echo "golangci-lint installed in ${SECONDS}s"
fi
"$GOBIN/golangci-lint" version
