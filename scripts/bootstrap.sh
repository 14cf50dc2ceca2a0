#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install the locked dependencies and the project into it.
#
# Sourced by run.sh (EXTRAS="") and test.sh (EXTRAS="dev"); runs on its own too:
#   scripts/bootstrap.sh                 # runtime dependencies (requirements/runtime.lock)
#   EXTRAS=dev scripts/bootstrap.sh      # runtime + dev tools (requirements/dev.lock)
#   PYTHON=python3.12 scripts/bootstrap.sh
#
# Dependencies come from the lock, every file checked against its sha256
# (pip --require-hashes); the project itself is then installed editable without
# dependencies. The lock's hash is kept in .venv/.cdb-lock-stamp: while the lock (and
# pyproject.toml) are unchanged, a later run skips pip altogether. Regenerate the locks with
# requirements/lock.sh. Progress and pip's output go to stderr; any failure ends in one
# line starting with "error:" and exit status 1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

_cdb_fail() {
    echo "error: $*" >&2
    exit 1
}

# Prints the interpreter's version (X.Y.Z); succeeds only for a Python >= 3.11 that runs.
# (Python-2 compatible, so that an old interpreter gets the message, not a SyntaxError.)
_cdb_python_version() {
    local out
    out="$("$1" -c 'import sys; print("%d.%d.%d" % tuple(sys.version_info[:3])); sys.exit(sys.version_info < (3, 11))' 2>/dev/null)" \
        || { printf '%s' "$out"; return 1; }
    printf '%s' "$out"
    [[ $out =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]
}

case "${EXTRAS:-}" in
    "") LOCK=requirements/runtime.lock ;;
    dev) LOCK=requirements/dev.lock ;;
    *) _cdb_fail "EXTRAS='${EXTRAS}' is not known: leave it empty (runtime) or set EXTRAS=dev" ;;
esac
[ -f "$LOCK" ] || _cdb_fail "$LOCK is missing: regenerate it with requirements/lock.sh"

if [ -n "${PYTHON:-}" ] || [ ! -x .venv/bin/python ]; then
    PYTHON="${PYTHON:-python3}"
    if ! version="$(_cdb_python_version "$PYTHON")"; then
        if [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
            _cdb_fail "Python 3.11 or newer is needed, but PYTHON=$PYTHON is $version (set PYTHON=/path/to/python3.11)"
        fi
        _cdb_fail "PYTHON=$PYTHON is not a Python interpreter that runs here; Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)"
    fi
fi
if [ -e .venv ] && ! _cdb_python_version .venv/bin/python >/dev/null; then
    _cdb_fail ".venv exists but its Python does not run or is older than 3.11: remove it (rm -rf .venv) and run again"
fi
if [ ! -e .venv ]; then
    echo "bootstrap: creating .venv with $PYTHON ($version) ..." >&2
    if ! venv_error="$("$PYTHON" -m venv .venv 2>&1 >/dev/null)"; then
        rm -rf .venv
        reason="$(printf '%s\n' "$venv_error" | grep -v '^[[:space:]]*$' | tail -n 1)"
        _cdb_fail "cannot create .venv with $PYTHON: ${reason:-unknown reason} (on Debian/Ubuntu: apt-get install python3-venv; or set PYTHON to another Python 3.11+)"
    fi
fi

STAMP=.venv/.cdb-lock-stamp
# One line: "<sha256 of the lock> <lock> <sha256 of pyproject.toml>".
_cdb_stamp_for() {
    .venv/bin/python - "$1" <<'PY'
import hashlib, sys
lock = sys.argv[1]
digest = lambda path: hashlib.sha256(open(path, "rb").read()).hexdigest()
print(digest(lock), lock, digest("pyproject.toml"))
PY
}
wanted="$(_cdb_stamp_for "$LOCK")"
have="$(cat "$STAMP" 2>/dev/null || true)"
# dev.lock holds every runtime package at the same version (requirements/lock.sh resolves
# runtime.lock against it), so a venv set up from the current dev.lock also serves run.sh.
if [ "$have" = "$wanted" ] \
    || { [ "$LOCK" = requirements/runtime.lock ] && [ "$have" = "$(_cdb_stamp_for requirements/dev.lock)" ]; }; then
    echo "bootstrap: .venv is up to date with $LOCK; skipping pip" >&2
else
    echo "bootstrap: installing $LOCK into .venv ..." >&2
    rm -f "$STAMP"
    pip=(.venv/bin/python -m pip --disable-pip-version-check --no-input)
    "${pip[@]}" install --quiet --progress-bar off --require-hashes -r "$LOCK" >&2 \
        || _cdb_fail "installing $LOCK failed (pip's message is above); check the network or the package index"
    "${pip[@]}" install --quiet --progress-bar off --no-deps -e . >&2 \
        || _cdb_fail "installing the project (pip install --no-deps -e .) failed (pip's message is above)"
    if ! problems="$("${pip[@]}" check 2>&1)"; then
        printf '%s\n' "$problems" >&2
        _cdb_fail "$LOCK does not satisfy pyproject.toml (above): regenerate the locks with requirements/lock.sh"
    fi
    printf '%s\n' "$wanted" >"$STAMP"
    echo "bootstrap: .venv is ready ($LOCK)" >&2
fi
unset -f _cdb_fail _cdb_python_version _cdb_stamp_for
