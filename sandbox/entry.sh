#!/bin/sh
# In-container entry: runs python as root (with the few capabilities the container keeps)
# for the harness; the arguments are python's, e.g.
#   -m grader.harness.run --checks-file /opt/harness/kit/assignments/epoll/checks.py
#   --submission /opt/harness/submission --entry server.py
#   --report /opt/harness/out/report.json --work /work --user 10001
set -eu
umask 022
# The working folder must not be one the student's uid can write to: `python -m` puts the
# current folder first on the import path.
cd /opt/harness/kit
# -s: no user site-packages (HOME is not the student's, but be explicit); -P: no cwd on sys.path.
exec python3 -s -P "$@"
