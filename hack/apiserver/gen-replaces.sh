#!/usr/bin/env bash
# Regenerate the replace directives of hack/apiserver/go.mod.
#
# The go.mod of k8s.io/kubernetes requires each staging module (k8s.io/api,
# k8s.io/apiserver, ...) at the placeholder version v0.0.0. Its own replace
# directives point them at ./staging/src, and Go ignores the replace
# directives of a dependency. A dependent module therefore needs its
# own replace for each of them, to the published tag v0.<minor>.<patch> that
# matches v1.<minor>.<patch>. This script derives that list from the go.mod of
# the required k8s.io/kubernetes version in the module cache, so it never goes
# out of date when the version changes.
#
# Usage: hack/apiserver/gen-replaces.sh   (run after changing the version)
set -euo pipefail

cd "$(dirname "$0")"
export GOFLAGS=-mod=mod

# Accept both "require k8s.io/kubernetes v1.x.y" and a line in a require block.
k8s_version=$(awk '{ sub(/^require[[:space:]]+/, "") } $1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ { print $2; exit }' go.mod)
if [[ -z "${k8s_version}" ]]; then
    echo "gen-replaces.sh: go.mod has no 'require k8s.io/kubernetes v1.x.y' line" >&2
    exit 1
fi
staging_version="v0.${k8s_version#v1.}"

# Download only the go.mod of k8s.io/kubernetes (the JSON names its path).
upstream_mod=$(go mod download -json "k8s.io/kubernetes@${k8s_version}" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
if [[ ! -f "${upstream_mod}" ]]; then
    echo "gen-replaces.sh: go.mod of k8s.io/kubernetes@${k8s_version} not found in the module cache" >&2
    exit 1
fi

# Staging modules are the k8s.io modules required at exactly v0.0.0.
mapfile -t staging < <(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print $1 }' "${upstream_mod}" | sort -u)
if [[ ${#staging[@]} -eq 0 ]]; then
    echo "gen-replaces.sh: found no staging module at v0.0.0 in ${upstream_mod}" >&2
    exit 1
fi

# Drop the replaces of an earlier run, then add the current ones.
for old in $(go mod edit -json | awk '/"Replace"/,0' | sed -n 's/^[[:space:]]*"Path": "\(k8s\.io\/[^"]*\)",\{0,1\}$/\1/p' | sort -u); do
    go mod edit -dropreplace="${old}"
done
args=()
for module in "${staging[@]}"; do
    args+=("-replace=${module}=${module}@${staging_version}")
done
go mod edit "${args[@]}"

echo "gen-replaces.sh: ${#staging[@]} staging modules of k8s.io/kubernetes@${k8s_version} replaced at ${staging_version}"
