#!/usr/bin/env bash
# Set up and run the paper-trading pipeline: migrations, Celery worker(s) and beat.
#   scripts/run.sh              # against the real MEXC (https://api.mexc.com)
#   scripts/run.sh --mexc-sim   # offline, against the built-in MEXC simulator
# Stop with Ctrl-C. Settings come from the environment or .env (see .env.template).
EXTRAS="" source "$(dirname "$0")/bootstrap.sh"
exec .venv/bin/cdb up "$@"
