#!/usr/bin/env bash
# Builds the real Kubernetes components that kubepki's tests run against
# (kubeadm, kube-apiserver, kube-controller-manager and etcd) from the pinned
# tools module in tools/testbed, into a cache directory outside git. A second
# run with the same pins does nothing.
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
stamp=$(cat "$mod/go.mod" "$mod/go.sum" "$mod/cmd/etcd/main.go" "$0" | sha256sum | cut -c1-16)
bin="$cache/$stamp/bin"

components="kubeadm kube-apiserver kube-controller-manager etcd"
have=1
for c in $components; do
	[ -x "$bin/$c" ] || have=0
done
if [ $have = 1 ]; then
	echo "$bin"
	exit 0
fi

mkdir -p "$bin"
# kubeadm refuses to deploy a control plane newer than itself, and a module
# build has no version stamped in: give every component the one it was built
# from, so /version answers as a real release would.
ldflags="-s -w"
ldflags+=" -X k8s.io/component-base/version.gitVersion=$k8s_version"
ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
ldflags+=" -X k8s.io/component-base/version.gitMinor=34"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"

for c in $components; do
	[ -x "$bin/$c" ] && continue
	case $c in
	etcd) pkg=./cmd/etcd ;;
	*) pkg=k8s.io/kubernetes/cmd/$c ;;
	esac
	echo "building $c into $bin (the first time takes a few minutes)" >&2
	(cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/$c.tmp" "$pkg")
	mv "$bin/$c.tmp" "$bin/$c"
done
echo "$bin"
