#!/usr/bin/env bash
# Create the venvs of the peer engines that `helpline bench llm` compares with.
#
#   .venv-bench-llama  llama-cpp-python, built from source without AVX-512/AMX
#                      (the native build segfaults in llama_decode on CPUs with
#                      AMX), to run the original SmolLM2 GGUF.
#   .venv-genai        onnxruntime-genai and its model builder, which imports
#                      classes that exist only in transformers 5.x. It borrows
#                      torch from the platform venv through a .pth file placed
#                      after its own site-packages, so no second torch is
#                      downloaded and the platform venv is never touched.
#
# Neither ever meets the platform venv. Idempotent: a venv whose .ok stamp
# records the pinned version is left alone.
#
# Usage: scripts/setup-bench-peers.sh [llama|genai]...   (default: both)
#
# Environment:
#   LLAMA_CPP_VERSION  llama-cpp-python version (default 0.3.36)
#   ORT_GENAI_VERSION  onnxruntime-genai version (default 0.18.0)
#   BENCH_PYTHON       interpreter to build the venvs from (default python3.11)
#   PLATFORM_VENV      the platform venv torch is borrowed from (default .venv)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LLAMA_VERSION="${LLAMA_CPP_VERSION:-0.3.36}"
GENAI_VERSION="${ORT_GENAI_VERSION:-0.18.0}"
PY="${BENCH_PYTHON:-python3.11}"
PLATFORM_VENV="${PLATFORM_VENV:-$ROOT/.venv}"
PIP_FLAGS=(--quiet --disable-pip-version-check)

log() { printf '[bench-peers] %s\n' "$*" >&2; }

fresh_venv() {  # fresh_venv DIR STAMP_TEXT -> 0 when work is needed
    local venv="$1" want="$2"
    if [[ -f "$venv/.ok" && "$(cat "$venv/.ok")" == "$want" && -x "$venv/bin/python" ]]; then
        log "$want already in $venv; nothing to do."
        return 1
    fi
    log "building $venv from $PY ($("$PY" --version 2>&1))."
    rm -rf "$venv"
    "$PY" -m venv "$venv"
    "$venv/bin/python" -m pip install "${PIP_FLAGS[@]}" --upgrade pip
}

setup_llama() {
    local venv="$ROOT/.venv-bench-llama" want="llama-cpp-python==$LLAMA_VERSION"
    fresh_venv "$venv" "$want" || return 0
    local start
    start=$(date +%s)
    log "compiling $want (about 3-4 min on 2 cores)."
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF" \
        CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
        "$venv/bin/python" -m pip install "${PIP_FLAGS[@]}" --no-binary llama-cpp-python \
        --no-cache-dir "$want" psutil
    "$venv/bin/python" -c 'import llama_cpp; print("llama_cpp", llama_cpp.__version__)' >&2
    printf '%s\n' "$want" >"$venv/.ok"
    log "llama venv done in $(( $(date +%s) - start )) s."
}

setup_genai() {
    local venv="$ROOT/.venv-genai" want="onnxruntime-genai==$GENAI_VERSION"
    fresh_venv "$venv" "$want" || return 0
    "$venv/bin/python" -m pip install "${PIP_FLAGS[@]}" "$want" "transformers>=5,<6" \
        onnx onnx-ir psutil safetensors sentencepiece protobuf
    local own borrowed
    own="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    borrowed="$("$PLATFORM_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    # A .pth entry is appended after the venv's own site-packages, so the
    # venv's transformers 5 wins and only what it lacks (torch) is borrowed.
    printf '%s\n' "$borrowed" >"$own/zz-platform-torch.pth"
    "$venv/bin/python" -c 'import onnxruntime_genai as og, transformers, torch
print("onnxruntime_genai", og.__version__, "transformers", transformers.__version__, "torch", torch.__version__)' >&2
    printf '%s\n' "$want" >"$venv/.ok"
}

targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(llama genai)
for target in "${targets[@]}"; do
    case "$target" in
        llama) setup_llama ;;
        genai) setup_genai ;;
        *) log "unknown target $target (llama|genai)"; exit 2 ;;
    esac
done
