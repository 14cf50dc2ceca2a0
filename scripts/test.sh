#!/usr/bin/env bash
# Set up .venv with the dev tools (scripts/bootstrap.sh: requirements/dev.lock) and run the
# whole test suite (lint, then pytest: unit, integration, e2e, conformance, resilience).
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth) and Redis on 127.0.0.1:6379;
# override with CDB_TEST_PG_ADMIN_URL / CDB_TEST_REDIS_URL. Extra args go to pytest.
EXTRAS="dev" source "$(dirname "$0")/bootstrap.sh"
.venv/bin/python - <<'PY'
import os, sys
import psycopg, redis
pg = os.environ.get("CDB_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
rd = os.environ.get("CDB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
problems = []
try:
    psycopg.connect(pg, connect_timeout=5).close()
except Exception as exc:
    problems.append(f"PostgreSQL at {pg} does not answer: {exc}")
try:
    redis.Redis.from_url(rd, socket_connect_timeout=5).ping()
except Exception as exc:
    problems.append(f"Redis at {rd} does not answer: {exc}")
if problems:
    sys.exit("error: the tests need real services:\n  " + "\n  ".join(problems))
PY
echo "ruff ..." >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/pytest "$@"
