#!/usr/bin/env bash
# Installs everything the project needs into ./.venv (idempotent). Usage: scripts/setup.sh [--test]
#   --test  also installs what the test suite needs (headless Chromium for the browser test).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
want_test=0; [ "${1:-}" = "--test" ] && want_test=1

apt_pkgs=(libosmesa6 libgl1)
[ $want_test = 1 ] && apt_pkgs+=(chromium chromium-driver)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing apt packages: ${missing[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
      || echo "setup: WARNING could not install ${missing[*]} (mesh rendering/browser tests may skip)"
  else
    echo "setup: WARNING not root; please install: sudo apt-get install -y ${missing[*]}"
  fi
fi

stamp=.venv/.installed-req-$(sha256sum requirements.txt pyproject.toml | sha256sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  # torch first and pinned: a bare torch pulls GB of CUDA wheels (shared/docs/environment.md).
  .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -r requirements.txt -c <(echo torch==2.13.0)
  # pyrender pins PyOpenGL 3.1.0 which cannot do OSMesa; upgrade in its own step.
  .venv/bin/pip install -q PyOpenGL==3.1.10
  .venv/bin/pip install -q --no-deps -e .
  rm -f .venv/.installed-req-*; touch "$stamp"
fi
if [ $want_test = 1 ] && [ -f requirements-test.txt ]; then
  test_stamp=.venv/.installed-test-$(sha256sum requirements-test.txt | cut -c1-12)
  if [ ! -f "$test_stamp" ]; then
    .venv/bin/pip install -q -r requirements-test.txt -c <(echo torch==2.13.0)
    rm -f .venv/.installed-test-*; touch "$test_stamp"
  fi
fi
