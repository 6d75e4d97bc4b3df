#!/usr/bin/env bash
# The threaded workbench tests under ThreadSanitizer (preset tsan), then every report sorted by
# tools/tsan_triage.py. Debian's Qt and LibTorch are not built with TSan, so TSan cannot see them
# synchronise (Qt's event queue, Gloo's work threads, OpenMP): reports at those hand-offs are
# counted, and any report with both accesses in DeltaTune's own code fails the run.
#   tools/tsan.sh [CLASS...]        (default: the five GUI classes that start worker threads)
set -euo pipefail
cd "$(dirname "$0")/.."
classes=("$@")
[ ${#classes[@]} -gt 0 ] || classes=(TestTrainingGui TestExperimentsGui TestPlayground TestTabs TestWorkbench)
[ -d build-tsan ] || cmake --preset tsan
ninja -C build-tsan tests/app_tests
logs=$(mktemp -d)
failed=0
for c in "${classes[@]}"; do
    # exitcode=0: a report must not fail the test itself (child CLI processes inherit the options);
    # die_after_fork=0: the Processes mode starts `deltatune` children from a threaded process.
    if ! TSAN_OPTIONS="halt_on_error=0 exitcode=0 die_after_fork=0 report_signal_unsafe=0 log_path=$logs/$c" \
        DT_TEST_CLASS="$c" QT_QPA_PLATFORM=offscreen ./build-tsan/tests/app_tests > "$logs/$c.out" 2>&1; then
        echo "FAIL: $c (see $logs/$c.out)"
        failed=1
    fi
    grep -E "^Totals" "$logs/$c.out" | sed "s/^/$c: /"
done
shopt -s nullglob
reports=("$logs"/Test*.[0-9]*)
if [ ${#reports[@]} -gt 0 ]; then
    python3 tools/tsan_triage.py "${reports[@]}" || failed=1
else
    echo "no ThreadSanitizer reports"
fi
echo "logs: $logs"
exit $failed
