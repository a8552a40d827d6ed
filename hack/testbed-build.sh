#!/usr/bin/env bash
# Builds the real Kubernetes components that kubepki's tests run against
# (today: kubeadm) from the pinned tools module in tools/testbed, into a cache
# directory outside git. A second run with the same pins does nothing.
#
#   hack/testbed-build.sh            # build if needed, print the bin directory
#
# The cache directory is $KUBEPKI_TESTBED_CACHE, or ~/.cache/kubepki-testbed.
# Tests find the binaries through the same variable (see internal/testbed).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
mod="$here/tools/testbed"
cache="${KUBEPKI_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubepki-testbed}"
k8s_version=v1.34.4

# The stamp covers the pins: a change to go.mod or go.sum rebuilds.
stamp=$(cat "$mod/go.mod" "$mod/go.sum" "$0" | sha256sum | cut -c1-16)
bin="$cache/$stamp/bin"

if [ -x "$bin/kubeadm" ]; then
	echo "$bin"
	exit 0
fi

mkdir -p "$bin"
# kubeadm refuses to deploy a control plane newer than itself, and a module
# build has no version stamped in: give it the one it was built from.
ldflags="-s -w"
ldflags+=" -X k8s.io/component-base/version.gitVersion=$k8s_version"
ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
ldflags+=" -X k8s.io/component-base/version.gitMinor=34"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"

echo "building kubeadm $k8s_version into $bin (first time takes a few minutes)" >&2
(cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/kubeadm.tmp" k8s.io/kubernetes/cmd/kubeadm)
mv "$bin/kubeadm.tmp" "$bin/kubeadm"
echo "$bin"
