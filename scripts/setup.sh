#!/usr/bin/env bash
# Installs everything the project needs into ./.venv (idempotent). Usage: scripts/setup.sh [--test]
#   --test  also installs what the test suite needs (headless Chromium for the browser test).
# Environment:
#   TORCH_INDEX_URL   where torch==2.13.0 comes from, e.g. https://download.pytorch.org/whl/cpu on a CPU-only
#                     machine without a local CPU wheel (PyPI's Linux torch is the CUDA build: GB of nvidia wheels)
#   ADAMOTION_SETUP_SKIP_APT=1  leave system packages alone
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
want_test=0; [ "${1:-}" = "--test" ] && want_test=1

apt_pkgs=(libosmesa6 libgl1)
[ $want_test = 1 ] && apt_pkgs+=(chromium chromium-driver)
missing=()
if [ "${ADAMOTION_SETUP_SKIP_APT:-0}" != 1 ]; then
  for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing apt packages: ${missing[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
      || echo "setup: WARNING could not install ${missing[*]} (mesh rendering/browser tests may skip)"
  else
    echo "setup: WARNING not root; please install: sudo apt-get install -y ${missing[*]}"
  fi
fi

# pip, with its resolver complaint about pyrender's PyOpenGL pin replaced by one line: we install PyOpenGL 3.1.10
# on purpose (pyrender pins 3.1.0, which cannot render offscreen with OSMesa), so the conflict is expected.
pip_install() {
  local log status=0
  log=$(mktemp)
  .venv/bin/pip install "$@" 2>"$log" || status=$?
  if grep -qi "pyrender .* requires pyopengl" "$log"; then
    echo "setup: note: pip reports pyrender's PyOpenGL==3.1.0 pin as a conflict; expected (3.1.10 is needed for OSMesa)"
  fi
  grep -vi -e "dependency resolver does not currently take into account" -e "pyrender .* requires pyopengl" \
    "$log" >&2 || true
  rm -f "$log"
  return $status
}

stamp=.venv/.installed-req-$(sha256sum requirements.txt pyproject.toml | sha256sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  pip_install -q --upgrade pip
  # torch first and pinned: a bare torch pulls GB of CUDA wheels (shared/docs/environment.md).
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    pip_install -q torch==2.13.0 --index-url "$TORCH_INDEX_URL"
  else
    pip_install -q torch==2.13.0
  fi
  pip_install -q -r requirements.txt -c <(echo torch==2.13.0)
  pip_install -q PyOpenGL==3.1.10
  pip_install -q --no-deps -e .
  rm -f .venv/.installed-req-*; touch "$stamp"
fi
if [ $want_test = 1 ] && [ -f requirements-test.txt ]; then
  test_stamp=.venv/.installed-test-$(sha256sum requirements-test.txt | cut -c1-12)
  if [ ! -f "$test_stamp" ]; then
    pip_install -q -r requirements-test.txt -c <(echo torch==2.13.0)
    rm -f .venv/.installed-test-*; touch "$test_stamp"
  fi
fi
