#!/usr/bin/env bash
# Runs the *.test.ts files under the given folders with node's test runner (tsx for TypeScript).
# A folder without tests is an error: a test command that runs nothing must not pass.
#   tools/run-tests.sh [--serial] DIR...
set -euo pipefail
cd "$(dirname "$0")/.."
args=(--import tsx --test --test-reporter=spec)
if [[ "${1:-}" == "--serial" ]]; then
    # Integration tests share the machine's network namespaces and ports: one file at a time.
    args+=(--test-concurrency=1)
    shift
fi
files=()
for dir in "$@"; do
    found=()
    if [[ -d "$dir" ]]; then
        mapfile -t found < <(find "$dir" -name '*.test.ts' | sort)
    fi
    if ((${#found[@]} == 0)); then
        echo "run-tests: no *.test.ts files under $dir" >&2
        exit 1
    fi
    files+=("${found[@]}")
done
exec node "${args[@]}" "${files[@]}"
