# Sourced by run.sh and test.sh: create .venv (Python 3.11+) and install the project into it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "setting up .venv ..." >&2
    "$PYTHON" -m venv .venv
fi
echo "installing dependencies into .venv ..." >&2
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${EXTRAS:-}]" >&2
