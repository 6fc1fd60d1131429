// Package containervnicexporter holds what belongs to the repository as a
// whole: the release version in the VERSION file, embedded so that every way
// of building the commands reports it, `go run` and plain `go build` too.
package containervnicexporter

import (
	_ "embed"
	"strings"

	"github.com/prometheus/common/version"
)

//go:embed VERSION
var versionFile string

// Version is the release version written in VERSION, e.g. "0.1.0".
func Version() string { return strings.TrimSpace(versionFile) }

// StampVersion gives prometheus/common/version the release version when the
// build did not link one in with -ldflags (a release build, `make build` or
// promu, does). The revision needs nothing here: that package reads the one
// the Go toolchain records (vcs.revision) when -ldflags gave none.
func StampVersion() {
	if version.Version == "" {
		version.Version = Version()
	}
}
