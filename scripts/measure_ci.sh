#!/usr/bin/env bash
# CI's time on a fresh machine, measured: a Debian 12 (bookworm) root made with debootstrap
# stands for CI's fresh machine (with git, make and the host's CA bundle, as a CI image has
# them), a clone of HEAD is put in it, and `.ci/run`'s steps run there one by one, each timed:
# `make deps` (Debian's QGIS), `make venv` (pip), the suite (`make test`), `make lts-root`
# (the Debian 13 root: debootstrap, apt, pip) and `make test-lts`.
#
#   sudo scripts/measure_ci.sh [SCRATCH]     default SCRATCH: /tmp/gapfill-ci-machine (~8 GB)
#
# Each step holds /tmp/gapfill-cpu.lock while it runs (shared machines run one heavy job at a
# time) and is timed inside the lock. The data folder, and the local wheel folder named by
# PIP_FIND_LINKS if any, are bound read-only, as CI's machine would see them. The times, and
# the lines of the LTS root's steps, go to SCRATCH/times.txt; the scratch root is removed at
# the end (also when a step fails).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
SCRATCH="${1:-/tmp/gapfill-ci-machine}"
MACHINE="$SCRATCH/root"
DATA="${GAPFILL_DATA:-$(cd "$REPO/.." && pwd)/shared/data}"
WHEELS="${PIP_FIND_LINKS:-}"
CA="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
LOCK=/tmp/gapfill-cpu.lock
TIMES="$SCRATCH/times.txt"
CLONE=/ci/gapfill  # the data folder sits beside it, at ../shared/data, as the Makefile expects

say() { echo "measure-ci: $*" | tee -a "$TIMES" >&2; }

# Run CMD in the machine: private mounts, a clean environment, the clone as cwd.
on_machine() {
    unshare --mount --propagation private -- /bin/bash -euo pipefail -c '
        machine=$1 data=$2 wheels=$3; shift 3
        mount -t proc proc "$machine/proc"
        mount --bind /dev "$machine/dev"
        mount -t tmpfs shm "$machine/dev/shm"
        mount -t sysfs -o ro sysfs "$machine/sys"
        mount --bind -o ro "$data" "$machine/ci/shared/data"
        if [ -n "$wheels" ]; then mount --bind -o ro "$wheels" "$machine/opt/wheels"; fi
        exec chroot "$machine" /usr/bin/env -i HOME=/root LANG=C.UTF-8 CI=true \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            PIP_CERT=/etc/ci-ca.crt SSL_CERT_FILE=/etc/ci-ca.crt \
            ${wheels:+PIP_FIND_LINKS=/opt/wheels} DEBIAN_FRONTEND=noninteractive \
            /bin/bash -c "cd /ci/gapfill && exec \"\$@\"" - "$@"
    ' on-machine "$MACHINE" "$DATA" "$WHEELS" "$@"
}

timed() {  # WHAT CMD...: CMD on the machine, timed inside the lock, its output in a log
    local what=$1 log
    shift
    log="$SCRATCH/${what// /-}.log"
    flock "$LOCK" /bin/bash -c '
        start=$SECONDS
        on_machine "${@:3}" >"$2" 2>&1 || { echo "FAILED: $1 (see $2)" >&2; exit 1; }
        echo "$1: $((SECONDS - start)) s"' - "$what" "$log" "$@" | tee -a "$TIMES"
    grep -h "^lts-root: .* done in" "$log" | tee -a "$TIMES" || true
}
export -f on_machine
export MACHINE DATA WHEELS

cleanup() {
    # mounts were private to each step; nothing can be left mounted on the host
    rm -rf --one-file-system "$MACHINE"
}
trap cleanup EXIT

rm -rf --one-file-system "$MACHINE" && mkdir -p "$SCRATCH" && : >"$TIMES"
say "the machine: a bookworm root in $MACHINE (not part of CI's time)"
start=$SECONDS
flock "$LOCK" unshare --mount --propagation private -- debootstrap --variant=minbase \
    --include=ca-certificates,git,make bookworm "$MACHINE" http://deb.debian.org/debian >/dev/null
say "debootstrap bookworm (the fresh machine itself): $((SECONDS - start)) s"
printf '#!/bin/sh\nexit 101\n' >"$MACHINE/usr/sbin/policy-rc.d" && chmod +x "$MACHINE/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$MACHINE/etc/resolv.conf"
cp "$CA" "$MACHINE/etc/ci-ca.crt"
mkdir -p "$MACHINE/ci/shared/data" "$MACHINE/opt/wheels"
git clone --quiet --branch "$(git -C "$REPO" rev-parse --abbrev-ref HEAD)" "$REPO" "$MACHINE$CLONE"
say "clone of $(git -C "$REPO" rev-parse --short HEAD) in $CLONE"

timed "make deps" make deps
timed "make venv" make venv
timed "make test" make test
timed "make lts-root" make lts-root
timed "make test-lts" make test-lts
say "done: the sum of the five steps above is CI's time on a fresh machine"
