#!/usr/bin/env bash
# One-command GPU check, for a Linux machine with CUDA, a pip PyTorch (its bundled LibTorch), CMake and
# ninja, and no Qt. It builds the engine and CLI (preset engine-only) against that LibTorch, runs
# `deltatune doctor --device cuda`, the parity fixtures on CUDA through the CLI, and `deltatune bench
# train` interleaved with transformers + PEFT on the same workloads, and writes a report.
#
#   tools/gpu-check.sh [OUT_DIR]          (default: $OUT, else ./gpu-check-out)
#
# Environment: PYTHON (python3), TORCH_PREFIX (default: the pip PyTorch's cmake_prefix_path; a
# standalone LibTorch's folder works too), DEVICE (cuda), BUILD_DIR (build-engine, kept between runs: the
# second run only relinks), JOBS (every core), BENCH_ROUNDS (3), DELTATUNE_JSON_INCLUDE_DIR (a folder
# holding nlohmann/json.hpp, where the system has no nlohmann_json package), QUICK=1 (a dry run of
# the script at tiny benchmark sizes, e.g. DEVICE=cpu on a machine without a GPU).
# Exit status: 0 when doctor and parity pass; the benchmark figures are reported, not judged.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-$PWD/gpu-check-out}}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
BUILD_DIR=${BUILD_DIR:-build-engine}
JOBS=${JOBS:-$(nproc)}
ROUNDS=${BENCH_ROUNDS:-3}
mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/report.md"
log() { echo "[$(date +%T)] $*" | tee -a "$OUT_DIR/gpu-check.log"; }
: > "$OUT_DIR/gpu-check.log"
status=0

log "1. configure and build (preset engine-only, $JOBS jobs)"
TORCH_PREFIX=${TORCH_PREFIX:-$("$PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)')} || { log "no PyTorch for $PYTHON (or set TORCH_PREFIX)"; exit 2; }
extra=()
[ -n "${DELTATUNE_JSON_INCLUDE_DIR:-}" ] && extra+=("-DDELTATUNE_JSON_INCLUDE_DIR=$DELTATUNE_JSON_INCLUDE_DIR")
command -v ccache >/dev/null && extra+=("-DCMAKE_CXX_COMPILER_LAUNCHER=ccache")
# NCCL's header ships in the pip package nvidia-nccl-*, beside PyTorch.
NCCL_INC=$("$PYTHON" -c 'import os, nvidia.nccl as n; print(os.path.join(list(n.__path__)[0], "include"))' 2>/dev/null || true)
[ -n "$NCCL_INC" ] && [ -f "$NCCL_INC/nccl.h" ] && extra+=("-DDELTATUNE_NCCL_INCLUDE_DIR=$NCCL_INC")
t0=$(date +%s)
if ! cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDELTATUNE_BUILD_GUI=OFF -DDELTATUNE_BUILD_TESTS=OFF \
      -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" "${extra[@]}" > "$OUT_DIR/configure.log" 2>&1; then
  log "configure failed (tail of $OUT_DIR/configure.log):"; tail -30 "$OUT_DIR/configure.log"; exit 2
fi
if ! cmake --build "$BUILD_DIR" -j "$JOBS" > "$OUT_DIR/build.log" 2>&1; then
  log "build failed (errors from $OUT_DIR/build.log):"; grep -E "error|Error" "$OUT_DIR/build.log" | head -40; exit 2
fi
CLI="$BUILD_DIR/app/deltatune"
log "built in $(( $(date +%s) - t0 )) s: $("$CLI" --version)"

log "2. deltatune doctor --device $DEVICE"
"$CLI" doctor --device "$DEVICE" | tee "$OUT_DIR/doctor.txt"
doctor_rc=${PIPESTATUS[0]}
"$CLI" doctor --device "$DEVICE" --json > "$OUT_DIR/doctor.json" 2>/dev/null
[ "$doctor_rc" = 0 ] || status=1

log "2b. a one-rank data-parallel group (NCCL on CUDA, Gloo on CPU) trains the demo task on $DEVICE"
printf '{"model": "%s/resources/demo/models/synth-bert-small", "task": "%s/resources/demo/tasks/reviews/task.json", "delta": {"method": "lora", "r": 8}, "training": {"max_steps": 60, "batch_size": 16, "lr": 0.005, "device": "%s", "eval_every": 0}}\n' \
  "$PWD" "$PWD" "$DEVICE" > "$OUT_DIR/nccl-smoke.json"
rm -rf "$OUT_DIR/nccl-smoke"
backend=nccl; [ "$DEVICE" = cpu ] && backend=gloo
WORLD_SIZE=1 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29517 DELTATUNE_DIST_BACKEND=$backend DELTATUNE_DIST_TIMEOUT=60 \
  "$CLI" train --spec "$OUT_DIR/nccl-smoke.json" --out "$OUT_DIR/nccl-smoke" > "$OUT_DIR/nccl-smoke.txt" 2>&1
smoke_rc=$?
tail -2 "$OUT_DIR/nccl-smoke.txt"
[ "$smoke_rc" = 0 ] || { log "one-rank $backend group failed"; status=1; }

log "3. parity fixtures on $DEVICE (forward and greedy generation against transformers)"
"$PYTHON" tools/fixture_parity.py --cli "$CLI" --device "$DEVICE" --fixtures tests/data/hf --out "$OUT_DIR/parity" | tee "$OUT_DIR/parity.txt"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

log "4. bench train against transformers + PEFT, $ROUNDS interleaved rounds"
printf '{"method": "lora", "r": 8, "lora_alpha": 16, "lora_dropout": 0.1, "target_modules": "all-linear"}\n' > "$OUT_DIR/lora-all-linear.json"
printf '{"method": "lora", "r": 8, "lora_alpha": 16, "lora_dropout": 0.1, "target_modules": ["query", "value"]}\n' > "$OUT_DIR/lora-qv.json"
bench() {  # name model delta batch seq steps
  local name=$1 model=$2 delta=$3 batch=$4 seq=$5 steps=$6
  for r in $(seq 1 "$ROUNDS"); do
    "$CLI" bench train "$model" --delta "$delta" --device "$DEVICE" --precision bf16 --batch "$batch" --seq "$seq" --steps "$steps" \
      > "$OUT_DIR/bench-$name-dt-$r.txt" 2>&1 || log "deltatune bench $name round $r failed"
    "$PYTHON" tools/gpu_peer_bench.py --model "$model" --device "$DEVICE" --dtype bf16 --batch "$batch" --seq "$seq" --steps "$steps" \
      > "$OUT_DIR/bench-$name-peer-$r.json" 2> "$OUT_DIR/bench-$name-peer-$r.err" || log "peer bench $name round $r failed"
  done
}
if [ "${QUICK:-0}" = 1 ]; then  # a dry run of the script itself (e.g. on a CPU): tiny sizes, no Llama
  bench bert "bert-base-seqcls" "$OUT_DIR/lora-qv.json" 2 16 2
else
  bench bert "bert-base-seqcls" "$OUT_DIR/lora-qv.json" 32 128 20
  bench llama "llama-1b-shape" "$OUT_DIR/lora-all-linear.json" 4 512 10
fi

log "5. report"
"$PYTHON" - "$OUT_DIR" "$ROUNDS" > "$REPORT" <<'PY'
import glob, json, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def med(v): return statistics.median(v) if v else float("nan")
def ours(name):
    ms, mib, tflops = [], [], []
    for f in sorted(glob.glob("%s/bench-%s-dt-*.txt" % (out, name))):
        t = open(f).read()
        m = re.search(r"^\S+\s+([\d.]+)\s", t.split("method", 1)[-1].split("\n", 1)[-1], re.M)
        if m: ms.append(float(m.group(1)))
        m = re.search(r"peak device memory \(allocated\): ([\d.]+) MiB", t)
        if m: mib.append(float(m.group(1)))
        m = re.search(r": ([\d.]+) TFLOP/s", t)
        if m: tflops.append(float(m.group(1)))
    return med(ms), med(mib), med(tflops)
def peer(name):
    rows = []
    for f in sorted(glob.glob("%s/bench-%s-peer-*.json" % (out, name))):
        try: rows.append(json.loads(open(f).read().strip().splitlines()[-1]))
        except Exception: pass
    return med([r["median_ms"] for r in rows]), med([r["peak_mib"] for r in rows]), (rows[0]["peer"] if rows else "peer failed")
def load_json(path):
    try: return json.load(open(path))
    except Exception: return {}
doc = load_json(out + "/doctor.json")
gpu = (doc.get("cuda_devices") or [{}])[0]
print("# DeltaTune GPU check\n")
print("- device: %s, %s GiB, compute %s; LibTorch %s" % (gpu.get("name", "?"), round(gpu.get("total_bytes", 0) / 2**30, 1), gpu.get("compute_capability", "?"), doc.get("libtorch", "?")))
print("- doctor: %s (%s)" % ("passed" if doc.get("ok") else "FAILED", ", ".join(doc.get("failed", [])) or "all checks"))
par = open(out + "/parity.txt").read().strip().splitlines()[-1] if glob.glob(out + "/parity.txt") else "not run"
smoke = open(out + "/nccl-smoke.txt").read().strip().splitlines() if glob.glob(out + "/nccl-smoke.txt") else ["not run"]
print("- one-rank data-parallel group: %s" % (smoke[-1] if smoke else "no output"))
print("- parity: %s\n" % par)
print("| workload (bf16, medians of %d interleaved rounds) | DeltaTune ms/step | peer ms/step | ratio | DeltaTune peak MiB | peer peak MiB |" % rounds)
print("|---|---|---|---|---|---|")
for name, label in (("bert", "BERT-base seq-cls, LoRA r=8 q/v, batch 32 x 128"), ("llama", "Llama 1.1B shape, LoRA r=8 all linear, batch 4 x 512")):
    o_ms, o_mib, o_tf = ours(name); p_ms, p_mib, who = peer(name)
    print("| %s | %.1f | %.1f | %.2f | %.0f | %.0f |" % (label, o_ms, p_ms, o_ms / p_ms if p_ms == p_ms and p_ms else float("nan"), o_mib, p_mib))
    if name == "llama":
        print("\nLlama MFU (4 N FLOPs per token over the frozen base, against 989 TFLOP/s bf16 dense, H100/H200 SXM): %.1f%% (%.1f TFLOP/s)" % (100 * o_tf / 989.0, o_tf))
print("\npeer: %s" % peer("bert")[2])
PY
cat "$REPORT"
log "done: status $status, report $REPORT"
exit $status
