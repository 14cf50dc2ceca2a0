# One image for every Python service (migrate, worker, beat); code baked in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 STATE_DIR=/tmp/cdb
RUN groupadd --system --gid 10001 cdb && useradd --system --uid 10001 --gid cdb --no-create-home cdb
WORKDIR /app
COPY pyproject.toml README.md celeryconfig.py ./
COPY app ./app
COPY workers ./workers
COPY migrations ./migrations
RUN pip install --no-cache-dir .
USER cdb:cdb
CMD ["celery", "-A", "workers", "worker", "-Q", "market_data,signals,risk,execution"]
