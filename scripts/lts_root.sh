#!/usr/bin/env bash
# A Debian 13 (trixie) root with QGIS 3.40 LTR, Python 3.13, numpy 2 and GDAL 3.10, for
# `make test-lts`: the suite runs on the QGIS most users have, next to Debian 12's QGIS 3.22.
#
#   scripts/lts_root.sh build        make the root, skipping every step already done
#   scripts/lts_root.sh run CMD...   run CMD in the root, in the repository, as CI would; the
#                                    test environment is /opt/gapfill-venv/bin/python, never
#                                    on PATH (QGIS's embedded Python would take it for its own)
#   scripts/lts_root.sh remove       delete the root (refused while anything is mounted in it)
#
# Every step leaves a stamp in $ROOT/.gapfill/ named by what it installed (the package list,
# a hash of the requirements), so a changed list redoes only its step. debootstrap writes to
# $ROOT.partial and renames it when complete: an interrupted build starts over, never resumes
# from half a system. The root is ~2 GB; it lives in .lts-root/ (git-ignored).
#
# Mounts (/proc, /dev, /sys read-only, a tmpfs /tmp, the repository and the data folder) are
# made in a private mount namespace (unshare -m): they vanish with the command, even when it
# fails or is killed, and the host never sees them. Afterwards the script checks that nothing
# is left mounted under the root.
#
# pip inside the root trusts the registry the way the host does: the host's CA bundle is
# copied in and named by PIP_CERT. torch is not installed: for Python 3.13 only the multi-GB
# CUDA build exists on the registry (CPU wheels live on download.pytorch.org, unreachable
# here), so `make test-lts` leaves out the tests marked `torch` and says so.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="${LTS_ROOT:-$REPO/.lts-root}"
SUITE=trixie
MIRROR="${LTS_MIRROR:-http://deb.debian.org/debian}"
# QGIS's own Python needs pip for Install dependencies; the packaging test needs git.
APT_PACKAGES="qgis python3-qgis qgis-providers python3-gdal gdal-bin python3-venv python3-pip git"
VENV=/opt/gapfill-venv
REQUIREMENTS="requirements.txt requirements-test.txt"
DATA="${GAPFILL_DATA:-$(cd "$REPO/.." && pwd)/shared/data}"
HOST_CA="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
STAMPS="$ROOT/.gapfill"

say() { echo "lts-root: $*" >&2; }

# A step's stamp, and its time in the log (CI's time is the sum of these and the two suites).
step_done() {  # STAMP WHAT START_SECONDS
    touch "$1"
    say "$2 done in $((SECONDS - $3)) s"
}

mounted_under() {
    # mount points under $1 in this (the host's) namespace; /proc/self/mountinfo field 5
    awk -v root="$1" '$5 == root || index($5, root "/") == 1 { print $5 }' /proc/self/mountinfo
}

refuse_if_mounted() {
    local left
    left="$(mounted_under "$1")"
    if [ -n "$left" ]; then
        say "still mounted under $1 (unmount them first: umount -R $1):"
        echo "$left" >&2
        exit 1
    fi
}

need_host_tools() {
    local missing=""
    command -v debootstrap >/dev/null || missing="$missing debootstrap"
    command -v unshare >/dev/null || missing="$missing util-linux"
    if [ -n "$missing" ]; then
        say "installing on the host:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
    fi
}

# Run a command in the root: private mounts, a clean environment, the repository as cwd.
in_root() {
    mkdir -p "$ROOT$REPO" "$ROOT/etc/gapfill"
    [ -d "$DATA" ] && mkdir -p "$ROOT$DATA"
    cp "$HOST_CA" "$ROOT/etc/gapfill/host-ca.crt"
    # A worktree's git folder lies outside it: bind it too (read-only), for `git ls-files`.
    local git_dir
    git_dir="$(git -C "$REPO" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)"
    case "$git_dir" in ""|"$REPO"/*) git_dir="" ;; *) mkdir -p "$ROOT$git_dir" ;; esac
    local status=0
    unshare --mount --propagation private -- /bin/bash -euo pipefail -c '
        root=$1 repo=$2 data=$3 git_dir=$4; shift 4
        mount -t proc proc "$root/proc"
        mount --bind /dev "$root/dev"
        mount -t tmpfs shm "$root/dev/shm"
        mount -t sysfs -o ro sysfs "$root/sys" 2>/dev/null || mount --rbind -o ro /sys "$root/sys"
        mount -t tmpfs tmp "$root/tmp"
        mount --bind "$repo" "$root$repo"
        if [ -d "$data" ]; then mount --bind -o ro "$data" "$root$data"; fi
        if [ -n "$git_dir" ]; then mount --bind -o ro "$git_dir" "$root$git_dir"; fi
        # PROJ_DATA: the pyproj of Debian (s2cloudless needs it) looks for the PROJ data under
        # sys.prefix, here the test venv: point it at the system data.
        exec chroot "$root" /usr/bin/env -i \
            PROJ_DATA=/usr/share/proj HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            PIP_CERT=/etc/gapfill/host-ca.crt SSL_CERT_FILE=/etc/gapfill/host-ca.crt \
            PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive \
            QT_QPA_PLATFORM=offscreen CI="${CI:-}" GAPFILL_DATA="$data" \
            /bin/bash -c "cd \"\$0\" && exec \"\$@\"" "$repo" "$@"
    ' in-root "$ROOT" "$REPO" "$DATA" "$git_dir" "$@" || status=$?
    refuse_if_mounted "$ROOT"
    return "$status"
}

debootstrap_root() {
    [ -f "$STAMPS/debootstrap.done" ] && return
    local start=$SECONDS
    refuse_if_mounted "$ROOT"
    refuse_if_mounted "$ROOT.partial"
    rm -rf --one-file-system "$ROOT" "$ROOT.partial"
    say "debootstrap $SUITE from $MIRROR into $ROOT (minutes)"
    # debootstrap mounts /proc and /sys in the target itself: the private namespace makes
    # sure nothing stays mounted when it fails half-way.
    unshare --mount --propagation private -- \
        debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$ROOT.partial" "$MIRROR"
    refuse_if_mounted "$ROOT.partial"
    printf '#!/bin/sh\nexit 101\n' >"$ROOT.partial/usr/sbin/policy-rc.d"  # no daemons start
    chmod +x "$ROOT.partial/usr/sbin/policy-rc.d"
    mkdir -p "$ROOT.partial/.gapfill"
    mv "$ROOT.partial" "$ROOT"
    step_done "$STAMPS/debootstrap.done" "debootstrap $SUITE" "$start"
}

apt_packages() {
    local stamp="$STAMPS/apt-$(echo "$APT_PACKAGES" | sha256sum | cut -c1-12).done"
    [ -f "$stamp" ] && return
    local start=$SECONDS
    say "apt-get install $APT_PACKAGES (minutes)"
    in_root /bin/sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        $APT_PACKAGES && apt-get clean"
    step_done "$stamp" "apt-get install" "$start"
}

python_packages() {
    local hash stamp
    hash="$(cd "$REPO" && cat $REQUIREMENTS | sha256sum | cut -c1-12)"
    stamp="$STAMPS/pip-$hash.done"
    [ -f "$stamp" ] && return
    local start=$SECONDS
    say "pip install $REQUIREMENTS into $VENV (Debian's numpy, GDAL and QGIS stay in use)"
    # numpy is pinned to Debian's, which its GDAL and QGIS are built against.
    in_root /bin/sh -c "
        set -e
        test -x $VENV/bin/python || python3 -m venv --system-site-packages $VENV
        numpy=\$(python3 -c 'import numpy; print(numpy.__version__)')
        echo \"numpy==\$numpy\" >/tmp/numpy.txt
        $VENV/bin/python -m pip install -q $(printf -- '-r %s ' $REQUIREMENTS) \
            -c /tmp/numpy.txt
        $VENV/bin/python -c 'from osgeo import gdal_array; import onnxruntime, qgis.core'"
    step_done "$stamp" "pip install" "$start"
}

versions() {
    in_root "$VENV/bin/python" -c '
import sys, numpy, onnxruntime
from osgeo import gdal
from qgis.core import Qgis
print(f"QGIS {Qgis.version()}, Python {sys.version.split()[0]}, numpy {numpy.__version__}, "
      f"GDAL {gdal.__version__}, onnxruntime {onnxruntime.__version__}")'
}

case "${1:-}" in
    build)
        need_host_tools
        debootstrap_root
        apt_packages
        python_packages
        versions
        ;;
    run)
        shift
        [ -f "$STAMPS/debootstrap.done" ] || { say "no root yet: run '$0 build'"; exit 1; }
        in_root "$@"
        ;;
    remove)
        refuse_if_mounted "$ROOT"
        rm -rf --one-file-system "$ROOT" "$ROOT.partial"
        ;;
    *)
        sed -n '2,9p' "$0" >&2
        exit 2
        ;;
esac
