# Sourced by the hack/kernel scripts: shared paths and the cache key.
# shellcheck shell=bash

KERNEL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$KERNEL_DIR/../.." && pwd)"
PFSR_CACHE_DIR="${PFSR_CACHE_DIR:-$HOME/.cache/pf-status-relay}"
KERNEL_SOURCE_PKG="${KERNEL_SOURCE_PKG:-linux-source-6.12}"
KERNEL_SOURCE_TARBALL="${KERNEL_SOURCE_TARBALL:-/usr/src/${KERNEL_SOURCE_PKG}.tar.xz}"
VENV_BIN="${VENV_BIN:-$REPO_ROOT/.venv/bin}"
VNG="${VNG:-$VENV_BIN/vng}"
# vng calls virtme-configkernel and friends by name.
export PATH="$VENV_BIN:$PATH"

log() { printf '[kernel] %s\n' "$*" >&2; }

# Cache key: sha256 over everything that changes the bzImage.
kernel_key() {
    local src_ver gcc_ver vng_ver
    src_ver="$(dpkg-query -W -f='${Version}' "$KERNEL_SOURCE_PKG" 2>/dev/null || echo unknown)"
    gcc_ver="$(gcc --version | head -n1)"
    vng_ver="$("$VNG" --version 2>/dev/null || echo unknown)"
    {
        printf 'source %s %s\n' "$KERNEL_SOURCE_PKG" "$src_ver"
        printf 'gcc %s\n' "$gcc_ver"
        printf 'vng %s\n' "$vng_ver"
        printf 'fragment\n'
        cat "$KERNEL_DIR/config.fragment"
        local p
        for p in "$KERNEL_DIR"/patches/*.patch; do
            [ -e "$p" ] || continue
            printf 'patch %s\n' "$(basename "$p")"
            cat "$p"
        done
    } | sha256sum | cut -c1-16
}

kernel_image_path() {
    printf '%s/kernel/%s/bzImage\n' "$PFSR_CACHE_DIR" "$(kernel_key)"
}
