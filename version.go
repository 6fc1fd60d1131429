// Package containervnicexporter holds what belongs to the repository as a
// whole: the release version in the VERSION file, embedded so that every way
// of building the commands reports it (`go run` and plain `go build` too),
// and the build facts a release build links in.
//
// It imports no more than it needs: psnic links it, and psnic's start-up is
// measured against a Go program that does nothing.
package containervnicexporter

import (
	_ "embed"
	"runtime"
	"runtime/debug"
	"strings"
)

//go:embed VERSION
var versionFile string

// Set by a release build (Makefile, .promu.yml) with -ldflags -X; empty in
// `go build` and `go run`, where Revision falls back to what the Go
// toolchain records.
var (
	version   string
	revision  string
	branch    string
	buildUser string
	buildDate string
)

// Build is what a binary knows about how it was built.
type Build struct {
	Version, Revision, Branch, BuildUser, BuildDate, Tags string
}

// Version is the release version: the one linked in, else VERSION's.
func Version() string {
	if version != "" {
		return version
	}
	return strings.TrimSpace(versionFile)
}

// Info gathers the build facts. The revision and tags not linked in come
// from the build information the Go toolchain records ("-modified" when the
// checkout had uncommitted changes), as prometheus/common/version does.
func Info() Build {
	b := Build{Version: Version(), Revision: revision, Branch: branch, BuildUser: buildUser, BuildDate: buildDate,
		Tags: "unknown"}
	vcsRevision, modified := "unknown", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				vcsRevision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			case "-tags":
				b.Tags = s.Value
			}
		}
	}
	if b.Revision == "" {
		b.Revision = vcsRevision
		if modified {
			b.Revision += "-modified"
		}
	}
	return b
}

// Print is the --version text, in prometheus/common/version's layout.
func Print(program string) string {
	b := Info()
	return program + ", version " + b.Version + " (branch: " + b.Branch + ", revision: " + b.Revision + ")\n" +
		"  build user:       " + b.BuildUser + "\n" +
		"  build date:       " + b.BuildDate + "\n" +
		"  go version:       " + runtime.Version() + "\n" +
		"  platform:         " + runtime.GOOS + "/" + runtime.GOARCH + "\n" +
		"  tags:             " + b.Tags
}
