"""Gunicorn settings (`gunicorn -c python:app.gunicorn_conf`): JSON logs like every process.

Gunicorn merges this with its own defaults, which refer to handlers named "console" and
"error_console"; both are redefined here to write JSON lines to stderr.
"""

accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'

_json_stderr = {
    "class": "logging.StreamHandler",
    "formatter": "json",
    "stream": "ext://sys.stderr",
}
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "app.logs.JsonFormatter", "service": "web"}},
    "handlers": {"console": _json_stderr, "error_console": _json_stderr},
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"handlers": ["error_console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the shared metrics folder."""
    import os

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
