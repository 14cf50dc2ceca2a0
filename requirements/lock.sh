#!/usr/bin/env bash
# Regenerate requirements/dev.lock and requirements/runtime.lock from pyproject.toml.
#
#   requirements/lock.sh                          # re-resolve, keeping the locked versions
#   requirements/lock.sh --upgrade-package httpx  # move one package to its newest allowed version
#   requirements/lock.sh --upgrade                # move everything (then run scripts/test.sh)
#
# Uses uv (UV_VERSION below) from a throwaway venv, never the project's .venv. dev.lock is
# resolved first (runtime + the `dev` extra); runtime.lock is then resolved with dev.lock as a
# constraint, so a package present in both has the same version in both. Both locks are
# universal (every OS, Python >= 3.11) and carry every published file's sha256, which
# `pip install --require-hashes` checks. Extra arguments go to both `uv pip compile` runs.
set -euo pipefail
UV_VERSION=0.13.9
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
tool="$(mktemp -d)"
trap 'rm -rf -- "$tool"' EXIT
"${PYTHON:-python3}" -m venv "$tool/venv"
"$tool/venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" >&2

compile() {  # compile OUTPUT TITLE [uv args...]
    local out=$1 title=$2
    shift 2
    "$tool/venv/bin/uv" pip compile pyproject.toml --quiet --universal --python-version 3.11 \
        --generate-hashes --no-emit-index-url --no-emit-find-links --no-header \
        -o "$out" "$@"
    {
        printf '# %s\n' "$title"
        printf '# Generated from pyproject.toml by requirements/lock.sh (uv %s) - do not edit by hand.\n' \
            "$UV_VERSION"
        printf '# Regenerate: requirements/lock.sh [--upgrade | --upgrade-package NAME]\n'
        printf '# pip install --require-hashes checks every file against its sha256 below.\n'
        cat -- "$out"
    } >"$out.new"
    mv -f -- "$out.new" "$out"
}

compile requirements/dev.lock \
    "Runtime + dev dependencies (pytest, ruff, ...), installed by scripts/test.sh (bootstrap.sh)" \
    --extra dev "$@"
compile requirements/runtime.lock \
    "Runtime dependencies, installed by scripts/run.sh (bootstrap.sh) and the Dockerfile" \
    -c requirements/dev.lock "$@"
echo "wrote requirements/dev.lock and requirements/runtime.lock" >&2
