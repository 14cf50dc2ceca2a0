"""`cdb up`: the whole system on one machine, started, watched and stopped together.

Children, in start order: [redis-server] [mexc-sim] worker beat web flower stream. The private
redis-server runs only when nothing answers at REDIS_URL (a local address) and the binary is
installed; mexc-sim only with --mexc-sim. Every child runs in its own process group with its
stdout sent to stderr, so stdout carries only what `cdb up` says to people.

Start-up, in order: the state folder (created mode 0700), WEB_PORT and FLOWER_PORT free,
Redis (or a private redis-server), the database migrated, the logins, the simulator, then
worker, beat, web and Flower. A failure at any step stops whatever was already started and
ends in one line on stderr, `error: <what is wrong>; <what to do>`, with exit status 1.

Once the web app answers /health/live (waited for up to WEB_WAIT_SECONDS), the first lines on
stdout say where everything is: the admin panel and its login, Flower and its login, the
database and Redis (passwords redacted), the MEXC base URL and the state folder. Passwords
are never printed: a generated one is only named by the file that holds it.

A child that exits is restarted after 1 s, then 2, 4 ... up to 60 s while it keeps crashing;
the delay starts again at 1 s once a child has stayed up STABLE_SECONDS. Each exit and restart
is logged with the child, its exit code and the delay. SIGINT or SIGTERM stops every child
(SIGTERM, so Celery makes a warm shutdown; the simulator and redis-server last; SIGKILL for
whatever is still running after STOP_GRACE_SECONDS or at a second signal) and exits 0.

Secrets: the generated logins go to `<state>/credentials.env`, which never exists with a mode
wider than 0600 (written to a 0600 temporary file, then renamed); the private redis-server
reads its password from `<state>/redis/redis.conf` (mode 0600), never from its command line.

`<state>/supervisor.json` (replaced atomically whenever a child starts, exits or restarts):

    {
      "version": 1,
      "pid": 4242,                      # the `cdb up` process
      "state": "starting" | "running" | "stopping" | "stopped" | "failed",
      "started_at": "2025-01-01T12:00:00.000Z",
      "updated_at": "2025-01-01T12:05:00.000Z",
      "children": {                     # in start order
        "worker": {
          "pid": 4250,                  # null while the child is not running
          "running": true,
          "restarts": 2,                # restarts since `cdb up` started
          "last_exit_code": -9,         # null if it never exited; negative: killed by signal N
          "last_restart_at": "2025-01-01T12:04:58.000Z",   # null if never restarted
          "up_since": "2025-01-01T12:04:58.000Z",          # null while not running
          "next_restart_at": null       # set while waiting to restart it
        },
        ...
      }
    }

Times are UTC ISO 8601. A file whose `pid` no longer runs is left over from a `cdb up` that
was killed; `state` is "stopped" after a clean stop.
"""

from __future__ import annotations

from app.config import Settings
from app.supervisor.probes import broker_problem, free_port
from app.supervisor.stack import Stack
from app.supervisor.startup import CDB, StackError, write_private

__all__ = [
    "CDB",
    "Stack",
    "StackError",
    "broker_problem",
    "free_port",
    "run_local_stack",
    "write_private",
]


def run_local_stack(settings: Settings, use_sim: bool, sim_symbols: int, concurrency: int) -> int:
    """Run the whole system until SIGINT/SIGTERM; 0 after a clean stop, 1 when it cannot start."""
    return Stack(settings, use_sim, sim_symbols, concurrency).run()
