# One image for every Python service: migrate, web (gunicorn), the per-queue workers,
# beat and flower. Production bakes the code in; docker-compose.override.yml mounts it.
FROM python:3.11-slim

# PYTHONPATH=/app: the code under /app is imported first (not the copy pip put in
# site-packages), so the dev override's bind mounts take effect without a rebuild.
# STATE_DIR lives on the tmpfs: the containers run with a read-only root file system.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STATE_DIR=/tmp/cdb

RUN groupadd --system --gid 10001 cdb \
    && useradd --system --uid 10001 --gid cdb --no-create-home --shell /usr/sbin/nologin cdb
WORKDIR /app

# Dependencies first, in their own layer: rebuilt only when the lock changes. Exactly the
# versions scripts/run.sh installs, every file checked against the lock's sha256.
COPY requirements/runtime.lock ./requirements/runtime.lock
RUN pip install --require-hashes -r requirements/runtime.lock

COPY pyproject.toml README.md ./
COPY celeryconfig.py ./
COPY app ./app
COPY workers ./workers
COPY migrations ./migrations
# --no-deps: the dependencies are already there; this adds the `cdb` command. pip check
# fails the build when the lock no longer satisfies pyproject.toml (run requirements/lock.sh).
RUN pip install --no-deps . && pip check && rm -rf build *.egg-info

USER cdb:cdb
EXPOSE 8000 5555
# Every compose service sets its own command; this default is the web app.
CMD ["gunicorn", "-b", "0.0.0.0:8000", "-w", "2", "app.wsgi:app"]
