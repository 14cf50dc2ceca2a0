#!/usr/bin/env bash
# Set up .venv (scripts/bootstrap.sh: the locked runtime dependencies) and run the whole
# system with `cdb up`: migrations, Celery worker and beat, the web app, Flower (and the
# MEXC simulator, and a private redis-server when none answers at REDIS_URL).
#   scripts/run.sh              # against the real MEXC (https://api.mexc.com)
#   scripts/run.sh --mexc-sim   # offline, against the built-in MEXC simulator
# Stop with Ctrl-C or SIGTERM. Settings come from the environment or .env (see .env.template).
# stdout: where everything is (URLs, logins, database, Redis); stderr: setup and JSON logs.
EXTRAS="" source "$(dirname "$0")/bootstrap.sh"
exec .venv/bin/cdb up "$@"
