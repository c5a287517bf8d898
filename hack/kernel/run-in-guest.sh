#!/usr/bin/env bash
# Boot the testbed kernel in qemu (TCG) and run one command inside it.
#
#   hack/kernel/run-in-guest.sh CMD [ARGS...]
#
# The guest sees the host's root filesystem read-only (9p), so the repo and
# its .venv are there; the command runs as root in the repo root with
# PFSR_IN_GUEST=1, HOME and TMPDIR on guest tmpfs, and PFSR_RESULTS pointing
# to a writable folder shared with the host. The guest command's exit code
# is written there and becomes this script's exit code (vng alone loses it).
#
# Env: PFSR_RESULTS   host folder for results (default: a fresh temp folder,
#                     removed afterwards unless PFSR_KEEP_RESULTS=1)
#      PFSR_RWDIRS    extra host folders the guest may write (space-separated)
#      PFSR_GUEST_CPUS, PFSR_GUEST_MEMORY (default 2, 2G)
#      PFSR_BZIMAGE   kernel to boot (default: hack/kernel/build.sh's output)
#      PFSR_GUEST_ENV extra "NAME=VALUE ..." exported in the guest
#      PFSR_GUEST_ROOT_CACHE 9p cache mode of the guest's root (default loose:
#                     metadata and pages cached in the guest, which makes a
#                     Python import ~5x faster under TCG; files the host changes
#                     while the guest runs may be seen stale; "none" to turn off)
#      PFSR_QEMU_OPTS extra QEMU options, passed to vng --qemu-opts (split at
#                     spaces by vng's shell; the e2e demo adds its NIC with them)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [ "$#" -eq 0 ]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

bzimage="${PFSR_BZIMAGE:-}"
if [ -z "$bzimage" ]; then
    bzimage="$(kernel_image_path)"
    [ -s "$bzimage" ] || bzimage="$("$KERNEL_DIR/build.sh")"
fi
[ -s "$bzimage" ] || { log "no kernel at $bzimage"; exit 1; }

scratch="$(mktemp -d "${TMPDIR:-/tmp}/pfsr-guest.XXXXXX")"
cleanup() { rm -rf "$scratch"; }
trap cleanup EXIT

# Not under /tmp, /var, /home, /etc, /usr...: vng lays writable overlays on
# those in the guest, which would hide a shared folder below them.
runs="$PFSR_CACHE_DIR/kernel/runs"
if [ -n "${PFSR_RESULTS:-}" ]; then
    results="$(mkdir -p "$PFSR_RESULTS" && cd "$PFSR_RESULTS" && pwd)"
else
    mkdir -p "$runs"
    results="$(mktemp -d "$runs/run.XXXXXX")"
    if [ "${PFSR_KEEP_RESULTS:-0}" = 1 ]; then
        log "results kept in $results"
    else
        trap 'rm -rf "$scratch" "$results"' EXIT
    fi
fi
case "$results" in
    /tmp/*|/var/*|/home/*|/etc/*|/usr/*|/lib/*|/opt/*|/srv/*)
        log "warning: $results is under a folder vng overlays in the guest" ;;
esac
rm -f "$results/exit-code" "$results/guest-start"

# The command line, quoted for the guest's shell.
cmd=""
for a in "$@"; do cmd+=" $(printf '%q' "$a")"; done

guest_script="$results/.guest.sh"
{
    echo '#!/bin/bash'
    echo "date +%s.%N > $(printf '%q' "$results/guest-start")"
    echo 'export PFSR_IN_GUEST=1'
    echo "export PFSR_RESULTS=$(printf '%q' "$results")"
    echo 'export HOME=/tmp/pfsr-home TMPDIR=/tmp/pfsr-tmp'
    echo 'export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1'
    echo "export PATH=$(printf '%q' "$VENV_BIN"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for kv in ${PFSR_GUEST_ENV:-}; do echo "export $(printf '%q' "$kv")"; done
    echo 'mkdir -p "$HOME" "$TMPDIR"'
    echo 'mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug 2>/dev/null'
    echo 'mkdir -p /run/netns'
    echo "cd $(printf '%q' "$REPO_ROOT") || exit 126"
    echo "$cmd"
    echo 'rc=$?'
    echo "echo \$rc > $(printf '%q' "$results/exit-code.tmp")"
    echo "mv $(printf '%q' "$results/exit-code.tmp") $(printf '%q' "$results/exit-code")"
    echo 'sync'
    echo 'exit $rc'
} > "$guest_script"
chmod +x "$guest_script"

rwdir_args=(--rwdir="$results")
for d in ${PFSR_RWDIRS:-}; do
    mkdir -p "$d"
    rwdir_args+=(--rwdir="$(cd "$d" && pwd)")
done

mkdir -p "$scratch/home" "$scratch/tmp"
# vng mounts the root with its own rootflags; a later rootflags= wins.
root_flags="rootflags=version=9p2000.L,trans=virtio,access=any,msize=512000"
case "${PFSR_GUEST_ROOT_CACHE:-loose}" in
    none|"") ;;
    *) root_flags+=",cache=${PFSR_GUEST_ROOT_CACHE:-loose}" ;;
esac
boot() {
    HOME="$scratch/home" TMPDIR="$scratch/tmp" "$VNG" \
        --force-9p --disable-kvm \
        -r "$bzimage" \
        --cpus "${PFSR_GUEST_CPUS:-2}" --memory "${PFSR_GUEST_MEMORY:-2G}" \
        "${rwdir_args[@]}" \
        --append "bonding.max_bonds=0 $root_flags" \
        -e "/bin/bash $guest_script" \
        ${PFSR_QEMU_OPTS:+--qemu-opts="$PFSR_QEMU_OPTS"} \
        </dev/null 2>&1 | tee "$scratch/console.log" | cat
    return "${PIPESTATUS[0]}"
}

# A guest that never reached the command (qemu or vng failed to start) is
# booted again; one that started is never rerun.
attempts=$((1 + ${PFSR_GUEST_BOOT_RETRIES:-1}))
for attempt in $(seq 1 "$attempts"); do
    start=$(date +%s.%N)
    set +e
    boot
    vng_rc=$?
    set -e
    end=$(date +%s.%N)
    [ -s "$results/guest-start" ] && break
    log "the guest did not start (vng exited $vng_rc, attempt $attempt of $attempts); its last output:"
    tail -n 30 "$scratch/console.log" >&2 || true
done

if [ -s "$results/guest-start" ]; then
    log "$(awk -v s="$start" -v g="$(cat "$results/guest-start")" -v e="$end" \
        'BEGIN { printf "boot to command %.1f s, total %.1f s", g - s, e - s }')"
fi
if [ -s "$results/exit-code" ]; then
    rc="$(cat "$results/exit-code")"
    exit "$rc"
fi
log "guest wrote no exit code (vng exited $vng_rc): the guest did not finish"
exit 125
