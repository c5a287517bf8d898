#!/usr/bin/env bash
# Build (or fetch from the cache) the testbed kernel and print its bzImage path.
#
#   hack/kernel/build.sh            -> prints $PFSR_CACHE_DIR/kernel/<key>/bzImage
#
# The key is a sha256 over the linux-source package version, gcc and virtme-ng
# versions, config.fragment and patches/*.patch. A cache hit returns at once.
# Env: PFSR_CACHE_DIR (default ~/.cache/pf-status-relay), JOBS (default nproc),
#      PFSR_KEEP_KERNEL_TREE=1 keeps the build tree after a successful build.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

key="$(kernel_key)"
out_dir="$PFSR_CACHE_DIR/kernel/$key"
image="$out_dir/bzImage"
if [ -s "$image" ]; then
    printf '%s\n' "$image"
    exit 0
fi

mkdir -p "$PFSR_CACHE_DIR/kernel"
exec 9>"$PFSR_CACHE_DIR/kernel/.lock"
if ! flock -n 9; then
    log "another kernel build holds the lock; waiting"
    flock 9
fi
if [ -s "$image" ]; then
    printf '%s\n' "$image"
    exit 0
fi

[ -r "$KERNEL_SOURCE_TARBALL" ] || { log "missing $KERNEL_SOURCE_TARBALL: run hack/kernel/deps.sh"; exit 1; }
[ -x "$VNG" ] || { log "missing $VNG: install the dev extras into .venv"; exit 1; }

build_root="$PFSR_CACHE_DIR/kernel/build-$key"
src="$build_root/$KERNEL_SOURCE_PKG"
start=$(date +%s)
if [ ! -f "$build_root/.extracted" ]; then
    rm -rf "$build_root"
    mkdir -p "$build_root"
    log "extracting $KERNEL_SOURCE_TARBALL"
    tar -C "$build_root" -xf "$KERNEL_SOURCE_TARBALL"
    for p in "$KERNEL_DIR"/patches/*.patch; do
        [ -e "$p" ] || continue
        log "applying $(basename "$p")"
        patch -d "$src" -p1 --forward --quiet < "$p"
    done
    touch "$build_root/.extracted"
fi

cd "$src"
if [ ! -f .config ] || [ ! -f "$build_root/.configured" ]; then
    log "configuring: vng --kconfig --config config.fragment"
    # vng writes the minimal virtme config, then merges our fragment.
    "$VNG" --kconfig --force --config "$KERNEL_DIR/config.fragment" >&2
    # vng appends its own defaults after our fragment (e.g. DWARF debug info):
    # merge the fragment once more so that it wins, then resolve dependencies.
    scripts/kconfig/merge_config.sh -m .config "$KERNEL_DIR/config.fragment" >&2
    make -s olddefconfig >&2
    # Check that every =y line of the fragment made it into .config.
    missing=0
    while IFS= read -r line; do
        case "$line" in CONFIG_*=y) ;; *) continue ;; esac
        if ! grep -qx "$line" .config; then
            log "config: $line did not stick"
            missing=1
        fi
    done < "$KERNEL_DIR/config.fragment"
    if grep -q '^CONFIG_DEBUG_INFO=y' .config; then
        log "config: debug info is still on"
        missing=1
    fi
    [ "$missing" = 0 ] || exit 1
    touch "$build_root/.configured"
fi

jobs="${JOBS:-$(nproc)}"
log "building bzImage with -j$jobs (cold build: ~10-20 min on 2 cores)"
make -s -j"$jobs" bzImage >&2

mkdir -p "$out_dir"
tmp="$(mktemp "$out_dir/.bzImage.XXXXXX")"
cp arch/x86/boot/bzImage "$tmp"
cp .config "$out_dir/config"
make -s kernelrelease > "$out_dir/kernelrelease" 2>/dev/null || true
chmod 644 "$tmp"
mv -f "$tmp" "$image"
end=$(date +%s)
log "built in $((end - start)) s: $image"
printf '%s\n' "$((end - start))" > "$out_dir/build-seconds"

if [ "${PFSR_KEEP_KERNEL_TREE:-0}" != 1 ]; then
    cd /
    rm -rf "$build_root"
fi
printf '%s\n' "$image"
