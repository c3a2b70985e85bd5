#!/usr/bin/env bash
# Create .venv-rasa-sdk: a venv of its own for a real rasa-sdk action server.
#
# rasa-sdk pins sanic, pydantic, protobuf and grpcio versions that must never
# meet the platform venv, so it lives apart. Idempotent: it does nothing when
# .venv-rasa-sdk/.ok records the pinned version.
#
# Environment:
#   RASA_SDK_VERSION  the rasa-sdk version to install (default 3.21.1)
#   RASA_SDK_VENV     where to create the venv (default <repo>/.venv-rasa-sdk)
#   RASA_SDK_PYTHON   the interpreter to build it from (default: python3.11,
#                     then pyenv's 3.11.*/3.10.*, then python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${RASA_SDK_VERSION:-3.21.1}"
VENV="${RASA_SDK_VENV:-$ROOT/.venv-rasa-sdk}"
STAMP="$VENV/.ok"

log() { printf '[rasa-sdk-venv] %s\n' "$*" >&2; }

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "rasa-sdk==$VERSION" && -x "$VENV/bin/python" ]]; then
    log "rasa-sdk==$VERSION already in $VENV; nothing to do."
    exit 0
fi

# rasa-sdk 3.21 requires Python >=3.10,<3.15.
supported() { "$1" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] < (3, 15)))' 2>/dev/null; }

pick_python() {
    local candidates=()
    [[ -n "${RASA_SDK_PYTHON:-}" ]] && candidates+=("$RASA_SDK_PYTHON")
    candidates+=(python3.11)
    if command -v pyenv >/dev/null 2>&1; then
        local root
        root="$(pyenv root)"
        candidates+=("$root"/versions/3.11.*/bin/python "$root"/versions/3.10.*/bin/python)
    fi
    candidates+=(python3.12 python3.10 python3)
    local py
    for py in "${candidates[@]}"; do
        if command -v "$py" >/dev/null 2>&1 && supported "$py"; then
            command -v "$py"
            return 0
        fi
    done
    return 1
}

PY="$(pick_python)" || { log "no Python 3.10-3.14 found; set RASA_SDK_PYTHON."; exit 1; }
start=$(date +%s)
log "building $VENV from $PY ($("$PY" --version 2>&1))."
rm -rf "$VENV"
"$PY" -m venv "$VENV"
log "upgrading pip."
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
log "installing rasa-sdk==$VERSION (sanic, grpcio, protobuf, opentelemetry...)."
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "rasa-sdk==$VERSION"
log "checking that rasa_sdk imports."
"$VENV/bin/python" -c 'import rasa_sdk, rasa_sdk.endpoint; print("rasa_sdk", rasa_sdk.__version__)' >&2
printf 'rasa-sdk==%s\n' "$VERSION" >"$STAMP"
log "done in $(( $(date +%s) - start )) s."
