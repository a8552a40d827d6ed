// Package version tells which kubepki this is.
package version

import "runtime/debug"

// version is set at release time with
// -ldflags "-X github.com/kubepki/kubepki/internal/version.version=v1.2.3".
var version = ""

// Version returns the release version, the module version when installed
// with go install, or "devel".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
