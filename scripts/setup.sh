#!/usr/bin/env bash
# Installs what the Space (default) or the tests (--dev) need, idempotently: a second run installs nothing.
#   apt: packages.txt (the Spaces convention) [+ packages-dev.txt], only those not yet installed
#   Python: a venv in .venv with requirements.txt [or requirements-dev.txt] and dlhub itself (editable)
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1
lists=(packages.txt)
[ "$dev" = 1 ] && lists+=(packages-dev.txt)

missing=()
for pkg in $(grep -hv '^[[:space:]]*\(#\|$\)' "${lists[@]}"); do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "setup: please install these system packages with your package manager: ${missing[*]}" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "setup: Python 3.10 or newer is needed (found $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv

hash=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -c1-16)
if [ -f ".venv/.installed-$hash-1" ] || { [ "$dev" = 0 ] && [ -f ".venv/.installed-$hash-0" ]; }; then
  exit 0  # this exact set is installed (the dev set includes the runtime set)
fi
requirements=requirements.txt
[ "$dev" = 1 ] && requirements=requirements-dev.txt
.venv/bin/pip install -r "$requirements"
.venv/bin/pip install --no-deps --no-build-isolation -e .
rm -f .venv/.installed-*
touch ".venv/.installed-$hash-$dev"
