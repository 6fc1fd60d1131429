#!/usr/bin/env bash
# Installs helm, which the chart test (charts/test) runs for `helm lint` and
# `helm template`, at a pinned version, built from source with `go install`
# into $(go env GOPATH)/bin. Idempotent: a helm already there at the pinned
# version is kept.
set -euo pipefail

helm_module=helm.sh/helm/v4
helm_version=v4.3.2

gobin="$(go env GOBIN)"
[[ -n $gobin ]] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
export GOBIN="$gobin"

# `go install` leaves helm's version at its "v4.3" default: stamp it, so that
# the check below can tell the pinned version.
if [[ -x $GOBIN/helm ]] && "$GOBIN/helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$helm_version"; then
	echo "helm $helm_version already in $GOBIN"
else
	echo "installing helm $helm_version into $GOBIN"
	SECONDS=0
	go install -ldflags "-X $helm_module/internal/version.version=$helm_version" \
		"$helm_module/cmd/helm@$helm_version"
	echo "helm installed in ${SECONDS}s"
fi
"$GOBIN/helm" version --short
