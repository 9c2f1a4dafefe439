#!/bin/sh
# socketgrade @VERSION@: PrairieLearn's entrypoint for the assignment "@ASSIGNMENT@".
# The grader host runs it as root in a container of this image, with the job's folder at
# /grade: it grades /grade/student with the in-place sandbox (the student's program runs as a
# dedicated unprivileged user) and writes /grade/results/results.json, which only root can
# read. It always exits 0 with a results.json: PrairieLearn reads it only after a clean exit.
# The job's folder (the hand-in, data.json, the results) is root's alone: the harness copies
# the hand-in for the student's user, which needs nothing else of it.
chmod 700 /grade
mkdir -p /grade/results
chmod 700 /grade/results
PYTHONPATH=/opt/socketgrade/lib python3 -m grader.platforms.run prairielearn \
  --config /opt/socketgrade/socketgrade.json \
  --submission /grade/student \
  --results /grade/results/results.json
if [ ! -s /grade/results/results.json ]; then
  # Python itself could not run the kit: the image was not built from this folder's Dockerfile.
  cat > /grade/results/results.json <<'JSON'
@FALLBACK@
JSON
fi
exit 0
