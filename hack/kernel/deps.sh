#!/usr/bin/env bash
# Install what the kernel testbed needs (Debian). Idempotent: when every
# package is already installed it only checks, without touching apt.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

pkgs=(
    qemu-system-x86 "$KERNEL_SOURCE_PKG" build-essential flex bison bc
    libelf-dev libssl-dev kmod udev iproute2 cpio rsync
)

missing=()
for p in "${pkgs[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
    case "$status" in ii*) ;; *) missing+=("$p") ;; esac
done

if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    log "apt packages present"
fi

if [ ! -x "$VNG" ]; then
    log "virtme-ng missing from $VENV_BIN: installing the venv's dev extras"
    "$VENV_BIN/python" -m pip install -q -e "$REPO_ROOT[dev]"
fi
"$VNG" --version >/dev/null
log "virtme-ng: $("$VNG" --version)"
