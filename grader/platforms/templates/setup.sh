#!/usr/bin/env bash
# socketgrade @VERSION@: Gradescope autograder for the assignment "@ASSIGNMENT@".
#
# How to use it: on Gradescope, create a "Programming Assignment", open Configure Autograder,
# choose a base image whose python3 is 3.11 or later (Ubuntu 24.04; 22.04's is 3.10), upload
# this zip (made by `grade export gradescope --assignment @ASSIGNMENT@`) and set the
# autograder timeout to at least @TIMEOUT@ seconds. Students hand in @ENTRY@. Try it with the
# kit's reference solution as a test submission first.
#
# Gradescope runs this script once, as root, in /autograder/source, when it builds the
# autograder image. It needs only python3 (3.11 or later): the kit and its libraries are the
# wheels in wheels/, unpacked with Python's own zipfile into lib/ (no pip, venv or network).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v python3 >/dev/null; then
  # A base image without Python at all: the one thing taken from the network.
  apt-get update && apt-get install -y --no-install-recommends python3
fi
python3 unpack_wheels.py wheels lib
# The checks, the kit and the settings are root's alone: the student's program runs as an
# unprivileged user of its own and must not read them.
chmod -R go-rwx .
chmod 700 .
