#!/bin/sh
# Makes sure a Docker engine is reachable and the grading image is up to date; safe to run
# again (it does only what is missing). When no engine answers, it installs Debian's
# docker.io (and debootstrap, for the offline base image) with apt if they are missing and
# starts dockerd in the background, logging to $SOCKETGRADE_DOCKERD_LOG. Needs root for that.
#
#   scripts/provision-docker.sh
#
# Environment: SOCKETGRADE_DOCKERD_LOG  (default /var/log/socketgrade-dockerd.log)
#              SOCKETGRADE_DOCKERD_WAIT seconds to wait for dockerd (default 60)
#              PYTHON                   interpreter with the kit's dependencies (default python3)
set -eu

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
LOG=${SOCKETGRADE_DOCKERD_LOG:-/var/log/socketgrade-dockerd.log}
WAIT=${SOCKETGRADE_DOCKERD_WAIT:-60}

say() { echo "provision-docker: $*"; }
die() { echo "provision-docker: $*" >&2; exit 1; }

engine_up() { docker info >/dev/null 2>&1; }

if ! engine_up; then
    [ "$(id -u)" = 0 ] || die "no Docker engine answers and starting one needs root: run this script with sudo"
    missing=""
    command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
    command -v debootstrap >/dev/null 2>&1 || missing="$missing debootstrap"
    if [ -n "$missing" ]; then
        say "installing$missing with apt"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        # shellcheck disable=SC2086  (one word per package)
        apt-get install -y -q --no-install-recommends $missing >/dev/null
    fi
    if [ -S /var/run/docker.sock ] && ! pgrep -x dockerd >/dev/null 2>&1; then
        rm -f /var/run/docker.sock      # left by a dockerd that is gone
    fi
    if ! pgrep -x dockerd >/dev/null 2>&1; then
        say "starting dockerd (log: $LOG)"
        mkdir -p "$(dirname "$LOG")"
        nohup dockerd >>"$LOG" 2>&1 </dev/null &
    fi
    deadline=$(( $(date +%s) + WAIT ))
    until engine_up; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            tail -n 20 "$LOG" >&2 || true
            die "dockerd did not answer within ${WAIT} s (its log: $LOG)"
        fi
        sleep 0.5
    done
    say "dockerd is up"
fi

# Builds only when the image is missing or stale: `status` exits non-zero then.
if "$PYTHON" -m grader.sandbox.docker status; then
    exit 0
fi
"$PYTHON" -m grader.sandbox.docker build
