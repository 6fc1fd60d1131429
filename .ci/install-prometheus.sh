#!/usr/bin/env bash
# Installs the Prometheus tools the end-to-end test (e2e/) runs: prometheus and
# promtool, and node_exporter, at pinned versions, built from source with
# `go install` into $(go env GOPATH)/bin. Idempotent: a binary already there
# at the pinned version (and, for prometheus, built with the same tags) is
# kept, so a second run on the same machine costs a second, not minutes.
#
# Measured on the CI machine (2 cores): prometheus+promtool about 2.5 min and
# node_exporter about 0.75 min fresh. Building Prometheus with remove_all_sd
# leaves out the cloud service discoveries we never use; the full build takes
# about 6.5 min and 3 GB of memory. Debian's packages are too old
# (Prometheus 2.x lacks the Prometheus 3 Content-Type strictness we test).
set -euo pipefail

# Module versions: Prometheus 3.x is published as Go module v0.3XX.Y.
prometheus_module=github.com/prometheus/prometheus
prometheus_modver=v0.316.0
prometheus_version=3.16.0
prometheus_tags=remove_all_sd
node_exporter_module=github.com/prometheus/node_exporter
node_exporter_version=1.12.1

gobin="$(go env GOBIN)"
[[ -n $gobin ]] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
export GOBIN="$gobin"

# ldflags stamping the version that `--version` prints: `go install` alone
# leaves it empty.
stamp() { echo "-X github.com/prometheus/common/version.Version=$1"; }

# has BIN VERSION [TAGS]: BIN is in GOBIN, prints VERSION, and was built
# with TAGS.
has() {
	local bin="$GOBIN/$1"
	[[ -x $bin ]] || return 1
	"$bin" --version 2>&1 | grep -q "version $2 " || return 1
	[[ -z ${3:-} ]] || go version -m "$bin" | grep -q -- "-tags=$3\$"
}

if has prometheus "$prometheus_version" "$prometheus_tags" && has promtool "$prometheus_version" "$prometheus_tags"; then
	echo "prometheus and promtool $prometheus_version already in $GOBIN"
else
	echo "installing prometheus and promtool $prometheus_version into $GOBIN"
	SECONDS=0
	go install -tags "$prometheus_tags" -ldflags "$(stamp "$prometheus_version")" \
		"$prometheus_module/cmd/prometheus@$prometheus_modver" \
		"$prometheus_module/cmd/promtool@$prometheus_modver"
	echo "prometheus and promtool installed in ${SECONDS}s"
fi

if has node_exporter "$node_exporter_version"; then
	echo "node_exporter $node_exporter_version already in $GOBIN"
else
	echo "installing node_exporter $node_exporter_version into $GOBIN"
	SECONDS=0
	go install -ldflags "$(stamp "$node_exporter_version")" \
		"$node_exporter_module@v$node_exporter_version"
	echo "node_exporter installed in ${SECONDS}s"
fi

"$GOBIN/prometheus" --version 2>&1 | head -n 1
"$GOBIN/node_exporter" --version 2>&1 | head -n 1
