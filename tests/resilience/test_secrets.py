"""Scenario 7: secrets during a full run — worker, beat and the web app (gunicorn) with every
secret set (REDIS_PASSWORD inside the private Redis's URL, POSTGRES_PASSWORD for the private
cluster's scram login, ADMIN_PASSWORD, SECRET_KEY, FLOWER_BASIC_AUTH), through a Redis and a
PostgreSQL blip so the error paths log too. No secret's value shows in any process's logs, in
the recorded task runs, in any command line, or in /metrics and /health (also while a
dependency is down)."""

from __future__ import annotations

import json
import sys
import time

import httpx
import pytest

from tests.resilience.audit import assert_clean
from tests.resilience.procs import Child, wait_until
from tests.resilience.scenario import finish, record, secret_leaks
from tests.resilience.services import free_port
from tests.resilience.stack import driven


def _scrape(web: str) -> dict[str, str]:
    pages = {}
    for path in ("/metrics", "/health", "/health/live"):
        try:
            pages[path] = httpx.get(f"{web}{path}", timeout=10).text
        except httpx.HTTPError as exc:
            pages[path] = f"({type(exc).__name__})"
    return pages


def _health_summary(body: str) -> dict:
    try:
        health = json.loads(body)
    except ValueError:
        return {"body": body[:200]}
    return {k: health.get(k) for k in ("status", "failing", "age_seconds")}


@pytest.mark.timeout(150)
def test_no_secret_shows_anywhere(make_stack, results, sim, pg, request):
    name = request.node.name
    results.scenario(name)
    stack = make_stack()
    worker = stack.start_worker()
    stack.start_beat()
    port = free_port()
    web = Child(
        [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
            "--config", "python:app.gunicorn_conf", "app.wsgi:app",
        ],
        stack.env | {"WEB_PORT": str(port)},
        "web",
        stack.folder,
    )  # fmt: skip
    stack.children.append(web)
    url = f"http://127.0.0.1:{port}"
    pages: list[dict[str, str]] = []
    with driven(sim.url):
        stack.wait_recovered(time.time(), 30, "a first run through execution")
        wait_until(lambda: "ok" in _scrape(url)["/health/live"], 30, "the web app")
        stack.wait_recovered(time.time(), 30, "a second run")
        pages.append(_scrape(url))
        # The error paths: the broker, then the database, away for a moment — each just after
        # a run finished, so no task is cut off (that is scenarios 2 and 3).
        stack.redis.kill()
        time.sleep(2)
        pages.append(_scrape(url))
        stack.redis.start()
        stack.wait_recovered(time.time(), 45, "a run after the broker blip")
        stack.engine.dispose()
        pg.stop("fast")
        try:
            time.sleep(2)
            pages.append(_scrape(url))
        finally:
            pg.start()
        stack.wait_recovered(time.time(), 45, "a run after the blips")
        pages.append(_scrape(url))
    leaks = secret_leaks(stack)
    for i, page in enumerate(pages):
        for path, body in page.items():
            for secret, value in stack.secrets.values().items():
                if value in body:
                    leaks.append(f"{secret} in {path} (scrape {i})")
    health_while_down = [_health_summary(page["/health"]) for page in pages[1:3]]
    record(
        results,
        name,
        secrets_checked=len(stack.secrets.values()),
        places_checked=["logs", "task_runs", "cmdlines", "/metrics", "/health", "/health/live"],
        processes_checked=sum(1 + len(c.children()) for c in stack.children if c.alive),
        log_lines=sum(len(c.lines) for c in stack.children),
        scrapes=len(pages),
        health_while_down=health_while_down,
        leaks=leaks,
    )
    result = finish(stack, results, name, settle_timeout=60)

    assert "cdb_equity" in pages[0]["/metrics"], pages[0]["/metrics"][:500]
    assert all(summary.get("status") for summary in health_while_down), health_while_down
    assert not leaks, leaks
    assert worker.alive
    assert_clean(result)
