#!/bin/sh
# Makes the offline base image for the grading image, for machines that reach no container
# registry: Debian bookworm (minbase) with python3, from a Debian mirror with debootstrap,
# then `docker import`. Needs root, debootstrap and a running Docker engine.
#
#   sandbox/build-base.sh [IMAGE]        default IMAGE: socketgrade-base:bookworm
#
# Environment: SOCKETGRADE_DEBIAN_MIRROR (default http://deb.debian.org/debian),
#              SOCKETGRADE_REBUILD_BASE=1 rebuilds even when IMAGE exists.
set -eu

IMAGE=${1:-socketgrade-base:bookworm}
MIRROR=${SOCKETGRADE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm

if [ "${SOCKETGRADE_REBUILD_BASE:-0}" != 1 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "base image $IMAGE already exists (SOCKETGRADE_REBUILD_BASE=1 rebuilds it)"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "build-base.sh: debootstrap needs root: run it with sudo" >&2
    exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    echo "build-base.sh: debootstrap is not installed: run apt-get install debootstrap" >&2
    exit 1
fi

ROOT=$(mktemp -d "${TMPDIR:-/var/tmp}/socketgrade-base.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT INT TERM

echo "debootstrap $SUITE (minbase + python3) from $MIRROR into $ROOT"
debootstrap --variant=minbase --include=python3 "$SUITE" "$ROOT" "$MIRROR"

# Nothing the grader needs: package caches, documentation, locales.
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* \
       "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/locale/* \
       "$ROOT"/var/log/*.log
chroot "$ROOT" python3 --version

tar --numeric-owner -C "$ROOT" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    --message "debootstrap --variant=minbase --include=python3 $SUITE" \
    - "$IMAGE"
echo "built base image $IMAGE"
