#!/usr/bin/env bash
# npm run test:asan: builds the native addon with AddressSanitizer + UndefinedBehaviorSanitizer into
# a temporary folder (never build/), and runs the native and simulated-runtime tests with it
# (DEIMV2_NATIVE_ADDON points the package at that build; child processes inherit it). Passes only
# with zero sanitizer reports.
#   - Node itself is not built with ASan, so libasan is preloaded (LD_PRELOAD) into every node process.
#   - detect_leaks=0: Node and V8 keep allocations alive until exit on purpose, so LeakSanitizer
#     would report them; the addon's own leaks are checked by the simulator's byte counts instead.
#   - Reports go to log files (log_path) that this script counts, so a report in a child process
#     (the CLI runs of the tests) is not lost.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${DEIMV2_ASAN_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/deimv2-asan-XXXXXX")}"
mkdir -p "$out/logs"
compiler=${CXX:-g++}
libasan=$("$compiler" -print-file-name=libasan.so)
[ -f "$libasan" ] || { echo "test:asan: $compiler has no libasan.so ($libasan)"; exit 1; }

echo "test:asan: building the addon with -fsanitize=address,undefined in $out/build"
node scripts/install-native.js build --out "$out/build" --CDDEIMV2_SANITIZE=ON --CDDEIMV2_WITHOUT_TENSORRT=ON >"$out/build.log" 2>&1 \
  || { tail -30 "$out/build.log"; exit 1; }
addon=$(ls "$out"/build/Release/*.node)
npx tsc -p tsconfig.json

export DEIMV2_NATIVE_ADDON="$addon"
export LD_PRELOAD="$libasan"
export ASAN_OPTIONS="detect_leaks=0:log_path=$out/logs/asan:abort_on_error=0:handle_segv=1"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$out/logs/ubsan"
status=0
npx vitest run test/native.test.ts test/sim-api.test.ts test/sim-faults.test.ts "$@" || status=$?
unset LD_PRELOAD

reports=$(find "$out/logs" -type f | wc -l)
if [ "$reports" -gt 0 ]; then
  echo "test:asan: $reports sanitizer report file(s):"
  for f in "$out"/logs/*; do echo "== $f"; head -40 "$f"; done
  status=1
else
  echo "test:asan: zero AddressSanitizer/UBSan reports"
fi
[ -z "${DEIMV2_ASAN_DIR:-}" ] && rm -rf "$out"
exit $status
