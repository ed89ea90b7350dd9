#!/usr/bin/env bash
# Installs what the tests need beyond Rust, Java and Maven, idempotently (CI starts from a
# machine that has only those): each section checks before it installs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

apt_install() { # PACKAGE... : installs the missing ones, updating the index once
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]} == 0)) && return 0
  echo "deps: apt-get install ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- browser tests (dashboard, HTML report): Debian's Chromium, playwright-core from npm ---
# (sections are added by the features that need them)
if [[ -f "$ROOT/node/tests/browser/package.json" ]]; then
  command -v chromium >/dev/null 2>&1 || apt_install chromium
  if [[ ! -d "$ROOT/node/tests/browser/node_modules/playwright-core" ]]; then
    echo "deps: npm ci (node/tests/browser)"
    (cd "$ROOT/node/tests/browser" && npm ci --silent --no-audit --no-fund)
  fi
fi

# --- Prometheus exposition checks: the reference Python parser ---
if ! python3 -c 'import prometheus_client' >/dev/null 2>&1; then
  echo "deps: pip install prometheus-client"
  python3 -m pip install -q --disable-pip-version-check prometheus-client==0.26.0
fi

# --- interoperability tests: seed-style nodes on kafka-python (as other implementations use) ---
if ! python3 -c 'import kafka' >/dev/null 2>&1; then
  echo "deps: pip install kafka-python"
  python3 -m pip install -q --disable-pip-version-check kafka-python==3.0.12
fi

# --- the OpenAPI document: the reference validator, and schemathesis to fuzz the API from it
# (node/tests/openapi.rs). Pinned; skipped when the pinned version is there already.
pip_pinned() { # MODULE PACKAGE VERSION
  python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('$2') != '$3')" >/dev/null 2>&1 && return 0
  echo "deps: pip install $2==$3"
  python3 -m pip install -q --disable-pip-version-check "$2==$3"
  python3 -c "import $1" # fail here, not in the tests, if the install did not work
}
pip_pinned openapi_spec_validator openapi-spec-validator 0.9.0
pip_pinned schemathesis schemathesis 4.32.5
