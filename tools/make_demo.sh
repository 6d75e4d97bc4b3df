#!/bin/sh
# Regenerates resources/demo from the repository: the synthetic language's tokenizer and tasks
# (byte-identical on every machine: own PRNG, no std distributions) and the pretrained demo model.
# Pretraining is a two-stage curriculum on one CPU thread with fixed seeds (docs/demo.md says why and
# what makes its bytes repeat):
#   1. 2,000 steps on the corpus's sentiment lines only (reviews and opinions, one line per
#      sequence), where a model this small learns adjective polarity quickly;
#   2. 6,000 steps on the whole corpus, continuing from stage 1, for topics and the rest.
# The larger model (synth-bert-base, hidden 128, 4 layers) follows the same curriculum with lr 1e-3
# and 3,000 steps in stage 2.
# The two demo T5s (synth-t5-small, about 0.37M parameters, and synth-t5-base, 1.9M) pretrain by span
# corruption on the whole corpus in one stage: 15% of the tokens hidden in spans of mean length 3.
# Usage: tools/make_demo.sh [path/to/deltatune]   (about 15 minutes for the small BERT, 30 for the
# larger one, 10 for the small T5 and 35 for the larger one, on one core)
set -eu
CLI=${1:-build/app/deltatune}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$CLI" demo data "$WORK" --seed 1 --corpus-lines 400000 --train 1000 --valid 400
LC_ALL=C grep -E "overall|because it was" "$WORK/corpus.txt" > "$WORK/corpus-sentiment.txt"
"$CLI" --threads 1 pretrain --model "$WORK/config-small.json" --corpus "$WORK/corpus-sentiment.txt" --tokenizer "$WORK/tokenizer.json" \
    --out "$WORK/stage1" --steps 2000 --batch 128 --seq 16 --lr 1.5e-3 --mask-prob 0.2 --eval-every 500 --seed 0
"$CLI" --threads 1 pretrain --model "$WORK/stage1" --corpus "$WORK/corpus.txt" --tokenizer "$WORK/tokenizer.json" \
    --out "$WORK/synth-bert-small" --steps 6000 --batch 128 --seq 32 --lr 1.5e-3 --mask-prob 0.2 --eval-every 1000 --seed 0
"$CLI" --threads 1 pretrain --model "$WORK/config-base.json" --corpus "$WORK/corpus-sentiment.txt" --tokenizer "$WORK/tokenizer.json" \
    --out "$WORK/base-stage1" --steps 2000 --batch 128 --seq 16 --lr 1e-3 --mask-prob 0.2 --eval-every 500 --seed 0
"$CLI" --threads 1 pretrain --model "$WORK/base-stage1" --corpus "$WORK/corpus.txt" --tokenizer "$WORK/tokenizer.json" \
    --out "$WORK/synth-bert-base" --steps 3000 --batch 128 --seq 32 --lr 1e-3 --mask-prob 0.2 --eval-every 1000 --seed 0
"$CLI" --threads 1 pretrain --model "$WORK/config-t5-small.json" --corpus "$WORK/corpus.txt" --tokenizer "$WORK/tokenizer-t5.json" \
    --out "$WORK/synth-t5-small" --steps 4000 --batch 128 --seq 32 --lr 2e-3 --eval-every 1000 --seed 0
"$CLI" --threads 1 pretrain --model "$WORK/config-t5-base.json" --corpus "$WORK/corpus.txt" --tokenizer "$WORK/tokenizer-t5.json" \
    --out "$WORK/synth-t5-base" --steps 4000 --batch 128 --seq 32 --lr 1e-3 --eval-every 1000 --seed 0
rm -rf "$ROOT/resources/demo"
mkdir -p "$ROOT/resources/demo/models"
cp -r "$WORK/tasks" "$WORK/tokenizer.json" "$ROOT/resources/demo/"
cp -r "$WORK/synth-bert-small" "$WORK/synth-bert-base" "$WORK/synth-t5-small" "$WORK/synth-t5-base" "$ROOT/resources/demo/models/"
echo "wrote $ROOT/resources/demo"
