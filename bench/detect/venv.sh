#!/usr/bin/env bash
# The detectors' peer virtualenv at ${ADVREC_CACHE:-~/.cache/advrec}/river-venv,
# built from bench/detect/requirements.txt (pinned); rebuilt when that file
# changes (as bench/peers/venv.sh does for the recommender's peers).
#   venv.sh               ensure it; print its python
#   venv.sh SCRIPT ARGS   ensure it; run SCRIPT with its python
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${ADVREC_CACHE:-$HOME/.cache/advrec}/river-venv
py=$venv/bin/python
req=$here/requirements.txt
want=$(sha256sum <"$req" | cut -d' ' -f1)
if ! [ -x "$py" ] || [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  echo "venv.sh: building $venv from $req" >&2
  [ -x "$py" ] || python3 -m venv "$venv"
  "$py" -m pip install -q --disable-pip-version-check --no-input -r "$req" >&2
  echo "$want" >"$venv/.requirements.sha256"
fi
if [ $# -eq 0 ]; then echo "$py"; else exec "$py" "$@"; fi
