#!/usr/bin/env bash
# Create .venv-rasa: Rasa Open Source 3.6 (and its rasa-sdk 3.6) in a venv of
# its own. Rasa 3.6 runs on Python 3.10 only and pins TensorFlow 2.12,
# SQLAlchemy 1.4 and aiohttp 3.9, so it never shares the platform venv;
# Helpline talks to it over HTTP. About 2.7 GB and 2 minutes. Idempotent: it
# does nothing when .venv-rasa/.ok records the pinned version.
#
# Environment:
#   RASA_VERSION  the rasa version to install (default 3.6.21)
#   RASA_VENV     where to create the venv (default <repo>/.venv-rasa)
#   RASA_PYTHON   a Python 3.10 to build it from (default: pyenv's 3.10.*,
#                 then python3.10 on PATH)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${RASA_VERSION:-3.6.21}"
VENV="${RASA_VENV:-$ROOT/.venv-rasa}"
STAMP="$VENV/.ok"

log() { printf '[rasa-venv] %s\n' "$*" >&2; }

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "rasa==$VERSION" && -x "$VENV/bin/rasa" ]]; then
    log "rasa==$VERSION already in $VENV; nothing to do."
    exit 0
fi

is310() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; }

pick_python() {
    local candidates=()
    [[ -n "${RASA_PYTHON:-}" ]] && candidates+=("$RASA_PYTHON")
    if command -v pyenv >/dev/null 2>&1; then
        local root
        root="$(pyenv root)"
        candidates+=("$root"/versions/3.10.*/bin/python)
    fi
    candidates+=("${HOME:-/root}"/.pyenv/versions/3.10.*/bin/python python3.10 /usr/bin/python3.10
                 /usr/local/bin/python3.10)
    local py
    for py in "${candidates[@]}"; do
        if command -v "$py" >/dev/null 2>&1 && is310 "$py"; then
            command -v "$py"
            return 0
        fi
    done
    return 1
}

PY="$(pick_python)" || {
    log "error: Rasa Open Source 3.6 needs Python 3.10, and none was found"
    log "(looked at \$RASA_PYTHON, pyenv's versions/3.10.*, python3.10 on PATH)."
    log "Install one (e.g. 'pyenv install 3.10') or set RASA_PYTHON=/path/to/python3.10."
    exit 3
}
start=$(date +%s)
log "building $VENV from $PY ($("$PY" --version 2>&1)); about 2.7 GB, 2 minutes."
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip<25"
log "installing rasa==$VERSION (TensorFlow 2.12, rasa-sdk 3.6)."
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "rasa==$VERSION"
log "checking that rasa and rasa_sdk import."
"$VENV/bin/python" -c 'import rasa, rasa_sdk; print("rasa", rasa.__version__, "rasa_sdk", rasa_sdk.__version__)' >&2
printf 'rasa==%s\n' "$VERSION" >"$STAMP"
log "done in $(( $(date +%s) - start )) s."
