#!/usr/bin/env bash
# Build kube-apiserver and etcd for the testbed, or reuse a cached build.
#
# A cold build compiles most of Kubernetes (5-8 minutes measured on two cores
# with Go 1.26.8, with an empty GOCACHE), so the binaries are cached outside the repository under
#   ${PFSR_CACHE_DIR:-$HOME/.cache/pf-status-relay}/apiserver/<key>/bin/
# where <key> is the SHA-256 of go.mod, go.sum, the two mains, the linker flags,
# `go version` and the target platform. A changed input gives a new key and a
# new build.
# The build runs in a temporary folder that is renamed into place only when
# both binaries exist, so an interrupted build never leaves a half cache entry.
#
# Usage:
#   hack/apiserver/build.sh              build if needed, print the bin folder
#   hack/apiserver/build.sh --print-dir  print the bin folder of the current
#                                        inputs, exit 3 if it is not built yet
set -euo pipefail

# The body is one function so that bash parses all of it before running it,
# which keeps an edit of this file during a long build from breaking that build.
main() {
    here=$(cd "$(dirname "$0")" && pwd)
    cd "${here}"
    export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

    cache_root="${PFSR_CACHE_DIR:-${HOME}/.cache/pf-status-relay}/apiserver"

    if ! command -v go >/dev/null 2>&1; then
        echo "build.sh: go not found in PATH; install Go 1.26 or newer to build kube-apiserver" >&2
        exit 2
    fi

    # Version stamps that /version reports, taken from the required module so that
    # they follow go.mod. The build date is the module's publication time, so the
    # stamps do not change from one build to the next.
    k8s_version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
    k8s_time=$(go list -m -f '{{.Time}}' k8s.io/kubernetes | sed 's/ +0000 UTC$/Z/; s/ /T/')
    minor=${k8s_version#v1.}
    minor=${minor%%.*}
    ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X ${pkg}.gitVersion=${k8s_version}"
        ldflags+=" -X ${pkg}.gitMajor=1"
        ldflags+=" -X ${pkg}.gitMinor=${minor}"
        ldflags+=" -X ${pkg}.gitTreeState=clean"
        ldflags+=" -X ${pkg}.buildDate=${k8s_time}"
    done

    key=$(
        {
            cat go.mod go.sum cmd/kube-apiserver/main.go cmd/etcd/main.go
            echo "${ldflags}"
            go version
            go env GOOS GOARCH CGO_ENABLED
        } | sha256sum | cut -d' ' -f1
    )
    dest="${cache_root}/${key}"

    if [[ -x "${dest}/bin/kube-apiserver" && -x "${dest}/bin/etcd" ]]; then
        echo "${dest}/bin"
        exit 0
    fi
    if [[ "${1:-}" == "--print-dir" ]]; then
        echo "${dest}/bin"
        exit 3
    fi

    mkdir -p "${cache_root}"
    tmp=$(mktemp -d "${cache_root}/.build-${key:0:12}.XXXXXX")
    trap 'rm -rf "${tmp}"' EXIT

    echo "build.sh: building kube-apiserver ${k8s_version} and etcd into ${dest} (a cold build took 5-8 min on 2 cores)" >&2
    start=$(date +%s)
    go build -trimpath -ldflags "${ldflags}" -o "${tmp}/bin/" ./cmd/kube-apiserver ./cmd/etcd
    seconds=$(( $(date +%s) - start ))

    {
        echo "kubernetes ${k8s_version}"
        go version
        echo "build_seconds ${seconds}"
        echo "nproc $(nproc)"
        ls -l "${tmp}/bin"
    } >"${tmp}/build-info.txt"

    # Another build of the same key may have finished first: keep that one.
    if ! mv -T "${tmp}" "${dest}" 2>/dev/null; then
        echo "build.sh: ${dest} appeared during the build, keeping it" >&2
    fi
    trap - EXIT
    rm -rf "${tmp}"
    echo "build.sh: built in ${seconds} s" >&2
    echo "${dest}/bin"
}

main "$@"
