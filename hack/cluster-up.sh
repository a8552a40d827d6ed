#!/usr/bin/env bash
# Starts a real kubeadm v1.34 control plane on 127.0.0.1 for a person to run
# kubepki against: builds the test bed (hack/testbed-build.sh), writes a
# kubeadm node into DIR/node (kept between runs; remove DIR for a fresh
# one), runs etcd, kube-apiserver and kube-controller-manager from it, prints
# the kubeconfig to use and waits for Ctrl-C. Needs root: kubeadm --rootfs
# chroots.
#
#   sudo hack/cluster-up.sh [DIR] [FLAG...]   # DIR defaults to ./.cluster
#
# Extra arguments go to hack/cluster-up (for instance -v for the logs, or
# -controller-manager=false).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
dir=.cluster
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
	dir=$1
	shift
fi
bin=$(bash "$here/hack/testbed-build.sh")
dir=$(mkdir -p "$dir" && cd "$dir" && pwd)
cd "$here"
exec go run ./hack/cluster-up -bin "$bin" -dir "$dir" "$@"
