"""Celery settings: queues and routes per stage, reliability policy, beat schedule.

Static policy lives here as module attributes (Celery reads them with
`config_from_object`); what depends on the environment (broker, schedule periods)
comes from the validated settings through `from_settings()`.

Reliability policy, and why:
- Late acks + reject on worker lost: a message is acknowledged only after its task
  finished, so a killed worker's task is delivered again. Safe because every task is
  idempotent by key (a market-data run is keyed by its task id).
- Prefetch 1: a worker holds at most one waiting message per process, so a slow
  task doesn't strand others and a crash re-queues little.
- Visibility timeout 60 s, above every hard time limit (market data 50 s, the other
  stages 30 s): Redis hands an unacknowledged message out again only after it, so a
  running task is never handed out twice, while a message whose worker died comes back
  within about two minutes (kombu checks every ~100 s) instead of fifteen. The reconciler
  does not wait for that: it re-drives a stopped chain within GRACE + one interval.
- Transient database and broker errors are retried in the task with exponential backoff
  and jitter (1 s doubling to 8 s, 6 times); permanent ones (a malformed payload, an unknown
  run) fail once with the reason. Retry countdowns stay far below the visibility timeout.
- Beat-sent tasks expire after one period: after an outage the backlog is dropped instead
  of replayed (the next run supersedes it); an expired task is recorded as EXPIRED.
- Exactly one beat sends: workers.beat.LeasedScheduler holds a lease in Redis; a second
  beat started by mistake stands by until the lease lapses.
- No result backend: stages hand ids on and record outcomes in the database.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from kombu import Exchange, Queue

if TYPE_CHECKING:
    from app.config import Settings

QUEUES = ("market_data", "signals", "risk", "execution")

task_queues = tuple(Queue(name, Exchange(name), routing_key=name) for name in QUEUES)
task_routes = {f"cdb.{name}.*": {"queue": name, "routing_key": name} for name in QUEUES}
# Housekeeping (reconciler, retention) runs beside market data: every deployment has workers
# on that queue, and it is never the bottleneck.
task_routes["cdb.maintenance.*"] = {"queue": "market_data", "routing_key": "market_data"}
task_default_queue = "market_data"
task_create_missing_queues = False

task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
worker_cancel_long_running_tasks_on_connection_loss = True
broker_connection_retry_on_startup = True
broker_connection_max_retries = None

# Seconds. Every hard limit stays below VISIBILITY_TIMEOUT (see above).
MARKET_DATA_SOFT_TIME_LIMIT = 40
MARKET_DATA_TIME_LIMIT = 50
task_soft_time_limit = 20
task_time_limit = 30
VISIBILITY_TIMEOUT = 60
RETRY_BACKOFF_MAX = 8
RETRY_MAX = 6

task_ignore_result = True
result_backend = None

task_serializer = "json"
accept_content = ["json"]
enable_utc = True
timezone = "UTC"

beat_scheduler = "workers.beat:LeasedScheduler"
beat_max_loop_interval = 5  # beat wakes at least this often, to renew its lease

worker_hijack_root_logger = False
# Refuses a malformed task message instead of dying on it (see there).
worker_consumer = "workers.consumer:GuardedConsumer"
worker_send_task_events = True
task_send_sent_event = True

MARKET_DATA_TASK = "cdb.market_data.run"
REFRESH_MARKETS_TASK = "cdb.market_data.refresh_markets"
SIGNALS_TASK = "cdb.signals.run"
RISK_TASK = "cdb.risk.run"
EXECUTION_TASK = "cdb.execution.run"
RECONCILE_TASK = "cdb.maintenance.reconcile"
PRUNE_TASK = "cdb.maintenance.prune"
STAGE_TASKS = {
    "market_data": MARKET_DATA_TASK,
    "signals": SIGNALS_TASK,
    "risk": RISK_TASK,
    "execution": EXECUTION_TASK,
}


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    interval = settings.market_data_interval_sec
    return {
        "market-data": {
            "task": MARKET_DATA_TASK,
            "schedule": timedelta(seconds=interval),
            "kwargs": {"trigger": "beat"},
            "options": {"expires": interval},
        },
        "refresh-markets": {
            "task": REFRESH_MARKETS_TASK,
            "schedule": timedelta(hours=1),
            "options": {"expires": 3600},
        },
        "reconcile": {
            "task": RECONCILE_TASK,
            "schedule": timedelta(seconds=settings.reconcile_interval_sec),
            "options": {"expires": settings.reconcile_interval_sec},
        },
        "prune": {
            "task": PRUNE_TASK,
            "schedule": timedelta(seconds=settings.prune_interval_sec),
            "options": {"expires": settings.prune_interval_sec},
        },
    }


def from_settings(settings: Settings) -> dict[str, Any]:
    transport: dict[str, Any] = {"visibility_timeout": VISIBILITY_TIMEOUT}
    if settings.redis_key_prefix:
        transport["global_keyprefix"] = settings.redis_key_prefix
    return {
        "broker_url": settings.broker_url,
        "broker_transport_options": transport,
        "beat_schedule": beat_schedule(settings),
        "beat_schedule_filename": str(settings.state_dir / "celerybeat-schedule"),
    }
