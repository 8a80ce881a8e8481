#!/usr/bin/env bash
# The README's demo command: installs what advrec needs (Debian packages),
# builds it, and runs advrec-demo: advrecd on its embedded broker (in
# memory, nothing to set up), fed a generated shop stream with bots, a
# shilling group and a few malformed records, while a viewer shows some
# shoppers' recommendation lists changing as they click and buy. It stops
# by itself after the stream (about 15 s) and prints a summary.
#
#   tools/demo.sh                 the default run
#   tools/demo.sh --events 100000 --rate 0    (any advrec-demo option; --help)
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target advrec-demo >/dev/null
exec build/advrec-demo "$@"
