#!/bin/sh
# Regenerates resources/demo from the repository: the synthetic language's tokenizer and tasks
# (byte-identical on every machine: own PRNG, no std distributions) and the pretrained demo model
# (masked-LM pretraining on CPU, fixed seed; see docs/demo.md for what makes its bytes repeat).
# Usage: tools/make_demo.sh [path/to/deltatune]   (about 10 minutes on 2 cores)
set -eu
CLI=${1:-build/app/deltatune}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$CLI" demo data "$WORK" --seed 1 --corpus-lines 400000 --train 1000 --valid 400
"$CLI" --threads 2 pretrain --model "$WORK/config-small.json" --corpus "$WORK/corpus.txt" --tokenizer "$WORK/tokenizer.json" \
    --out "$WORK/synth-bert-small" --steps 8000 --batch 128 --seq 32 --lr 1.5e-3 --mask-prob 0.2 --eval-every 1000 --seed 0
rm -rf "$ROOT/resources/demo"
mkdir -p "$ROOT/resources/demo/models"
cp -r "$WORK/tasks" "$WORK/tokenizer.json" "$ROOT/resources/demo/"
cp -r "$WORK/synth-bert-small" "$ROOT/resources/demo/models/"
echo "wrote $ROOT/resources/demo"
