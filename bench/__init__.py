"""`cdb bench`: the performance harness.

It runs the real system — Redis, PostgreSQL (or the embedded SQLite), the MEXC simulator and
Celery workers started the way `cdb up` starts them — and measures, each figure with the
configuration it used:

  baseline  a bare chain of four no-op tasks over the four stage queues (workers/bench.py)
  pipeline  per-stage and end-to-end latencies, in a quiet market and one with trades
  universe  a full cycle over a 2,500-symbol universe
  scrape    /metrics and /health under six /health pollers, with 100,000 orders and fills
  memory    worker RSS after 1,000 and 10,000 runs
  storage   bytes per run per table, and the database after a simulated month

Modules, in the order a run uses them:
  options   what runs and how big (--quick)        runner    the sections in order, cleanup
  resources throwaway databases, Redis prefix       machine   what it ran on
  section   one section's database, simulator and children
  stack     the `cdb up` children, via app.supervisor.Stack
  market    the simulator and the moves that make the strategy trade
  driver    market-data runs sent back to back       timings   stage times from task_runs
  baseline  the no-op chains (workers/bench.py)      floor     the same on a bare Celery app
  pipeline  baseline + pipeline + storage on one worker
  universe, scrape, memory                           one module per section
  clone     bulk rows: copies of real runs' rows     month     the simulated month
  sizes     table and database sizes                 proc      RSS/PSS from /proc
  stats     percentiles                              report    JSON keys and the text table
  progress  lines on stderr                          errors    BenchError
"""
