#!/usr/bin/env bash
# Chooses and builds the training corpus of `make default-checkpoints`; prints its folder on stdout.
#   scripts/default_data.sh PROCEDURAL MOCAP_OUT MIXED_OUT
# Motion capture (Bandai Namco Research Motion dataset, CC BY-NC 4.0) comes from $BANDAI_NAMCO (the dataset/
# folder of a user's clone of the dataset's public repository) or, when that is unset, from the archive in
# ../shared next to the repository when present. With neither, the procedural corpus alone is used and the
# checkpoints stay Apache-2.0. $MIX_ARGS is passed to `adamotion data mix` (e.g. "--mocap-repeat 2");
# $ADAMOTION is the command that runs the CLI (default: this checkout's code with the .venv interpreter).
set -euo pipefail
cd "$(dirname "$0")/.."
procedural=$1; mocap_out=$2; mixed_out=$3
archive=${BANDAI_NAMCO_ARCHIVE:-../shared/data/bandai-namco/bandai_namco_bvh.tar.xz}
adamotion=${ADAMOTION:-.venv/bin/python -m adamotion}
src=${BANDAI_NAMCO:-}
if [ -z "$src" ] && [ -f "$archive" ]; then
  src=data/bandai-namco-src/dataset
  if [ ! -d "$src" ]; then
    echo "default-data: extracting $archive into data/bandai-namco-src (never committed: /data/ is git-ignored)" >&2
    mkdir -p data/bandai-namco-src && tar -xJf "$archive" -C data/bandai-namco-src
  fi
fi
if [ -z "$src" ]; then
  echo "default-data: no Bandai Namco data (set BANDAI_NAMCO=DIR); training on the procedural corpus only" >&2
  echo "$procedural"; exit 0
fi
if [ ! -d "$src" ]; then
  echo "default-data: BANDAI_NAMCO=$src is not a folder; point it at the dataset/ folder of your clone" >&2; exit 2
fi
# shellcheck disable=SC2086  # $adamotion is a command line
[ -f "$mocap_out/corpus.json" ] || $adamotion data import-bandai-namco "$src" --out "$mocap_out" --workers 2 >&2
# shellcheck disable=SC2086  # MIX_ARGS is a list of options
$adamotion data mix --procedural "$procedural" --mocap "$mocap_out" --out "$mixed_out" ${MIX_ARGS:-} >&2
echo "$mixed_out"
