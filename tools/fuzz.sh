#!/usr/bin/env bash
# Builds the libFuzzer targets (preset `fuzz`: clang, ASan + UBSan) and runs each for a bounded time
# on its seed corpus (built from tests/data by deltatune-fuzz-seeds) with its dictionary. Any crash,
# sanitizer report, leak, allocation over the limit, uncaught non-dt::Error exception or hang fails
# the run; the input is kept under build-fuzz/findings/TARGET/ (replay: build-fuzz/tests/fuzz/fuzz_TARGET FILE).
#
#   tools/fuzz.sh [--seconds N] [--jobs J] [TARGET...]     default: 20 s per target, every target
#
# The corpus grows in build-fuzz/corpus/TARGET between runs. A finding, once fixed, goes into
# tests/fuzz/regressions/TARGET/ so that the test suite replays it (TestFuzzCorpus).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=20
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_PER="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
ALL=(safetensors shard_index config tokenizer task_data run_spec peft_adapter delta_folder events)
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")

# DT_FUZZ_NO_BUILD=1 runs the targets as built (several runs at once must not build concurrently).
if [ -z "${DT_FUZZ_NO_BUILD:-}" ]; then
  if [ ! -f build-fuzz/build.ninja ]; then cmake --preset fuzz >/dev/null; fi
  cmake --build build-fuzz
fi

B=build-fuzz
# The targets' scratch folders (a crashing input leaves its own behind): under the build folder.
export TMPDIR="$PWD/$B/tmp/$$"
rm -rf "$TMPDIR"; mkdir -p "$TMPDIR"
trap 'rm -rf "$TMPDIR"' EXIT
# Leaks are checked (LSan); the allocation limit makes an allocation bomb a finding, not an OOM kill.
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0:abort_on_error=0:symbolize=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
failed=()
for t in "${TARGETS[@]}"; do
  bin="$B/tests/fuzz/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz: no target '$t' (targets: ${ALL[*]})" >&2; exit 2; }
  rm -rf "$B/seeds/$t"; mkdir -p "$B/seeds/$t" "$B/corpus/$t" "$B/findings/$t"
  "$B/tests/fuzz/deltatune-fuzz-seeds" "$t" "$B/seeds/$t" >/dev/null
  [ -d "tests/fuzz/regressions/$t" ] && cp tests/fuzz/regressions/$t/* "$B/seeds/$t/" 2>/dev/null || true
  log="$B/findings/$t.log"
  set +e
  "$bin" -max_total_time="$SECONDS_PER" -timeout=20 -rss_limit_mb=3072 -malloc_limit_mb=1024 -max_len=400000 \
    -dict="tests/fuzz/dict/$t.dict" -artifact_prefix="$B/findings/$t/" -print_final_stats=1 \
    "$B/corpus/$t" "$B/seeds/$t" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
  eps=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  if [ $rc -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $rc) after $runs runs; log $log; inputs: $(ls "$B/findings/$t" | tr '\n' ' ')"
    grep -m3 -E "ERROR|SUMMARY|terminate|what\(\)" "$log" | sed 's/^/    /'
    failed+=("$t")
  else
    echo "fuzz: $t ok: $runs runs in ${SECONDS_PER} s ($eps/s), coverage $cov edges, corpus $(ls "$B/corpus/$t" | wc -l) inputs"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]}" >&2
  exit 1
fi
