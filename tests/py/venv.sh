#!/usr/bin/env bash
# The Python virtualenv for the test clients (kafka-python, fastavro,
# confluent-kafka with its Schema Registry client), at
# ${ADVREC_CACHE:-~/.cache/advrec}/venv, built from tests/py/requirements.txt.
# Idempotent: packages are (re)installed only when requirements.txt changed
# (its hash is stamped in the venv) or the venv is missing or broken.
#
#   venv.sh                   ensure the venv; print its python's path
#   venv.sh SCRIPT [ARGS...]  ensure the venv; run SCRIPT with its python
#                             (tests/py is on PYTHONPATH, for advrec_kafka)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${ADVREC_CACHE:-$HOME/.cache/advrec}/venv
py=$venv/bin/python
req=$here/requirements.txt
want=$(sha256sum <"$req" | cut -d' ' -f1)

if ! [ -x "$py" ] || ! "$py" -c 'import sys' 2>/dev/null \
   || [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  echo "venv.sh: building $venv from $req" >&2
  mkdir -p "$(dirname "$venv")"
  # A lock, so that two tests starting at once do not build it twice.
  exec 9>"$venv.lock"
  flock -w 600 9 || { echo "venv.sh: could not lock $venv.lock" >&2; exit 1; }
  if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ] || ! [ -x "$py" ]; then
    rm -f "$venv/.requirements.sha256"
    [ -x "$py" ] && "$py" -c 'import sys' 2>/dev/null || { rm -rf "$venv"; python3 -m venv "$venv"; }
    "$py" -m pip install -q --disable-pip-version-check --no-input -r "$req" >&2
    echo "$want" >"$venv/.requirements.sha256"
  fi
  exec 9>&-
fi

if [ $# -eq 0 ]; then
  echo "$py"
else
  export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
  exec "$py" "$@"
fi
