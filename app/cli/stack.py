"""`cdb up` (the whole system on this machine) and `cdb mexc-sim` (the simulated exchange)."""

from __future__ import annotations

import sys

import click

from app.cli.base import main, settings
from app.logs import configure_logging


@main.command("mexc-sim")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--symbols", default=50, show_default=True, type=click.IntRange(1, 5000))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--weight-limit", default=500, show_default=True, type=click.IntRange(1))
@click.option(
    "--fault",
    "faults",
    multiple=True,
    help="Inject a fault, e.g. rate_limit:count=3,retry_after=2 (repeatable).",
)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    help="Move a market, e.g. BTCUSDT:price_factor=0.8,spread_factor=5 (repeatable).",
)
@click.option(
    "--ws-port",
    default=None,
    type=click.IntRange(0, 65535),
    help="WebSocket port (default: --port + 1, or any free port if taken; 0 = any free port).",
)
def mexc_sim(
    host: str,
    port: int,
    symbols: int,
    seed: int,
    weight_limit: int,
    faults: tuple[str, ...],
    scenarios: tuple[str, ...],
    ws_port: int | None,
) -> None:
    """Serve a deterministic simulated MEXC spot API on HOST:PORT (REST) and its WebSocket
    market streams on HOST:WS_PORT/ws."""
    from app.exchange.simulator import parse_scenario_spec, run_simulator
    from app.exchange.simulator.faults import parse_fault_spec

    configure_logging("mexc-sim", "INFO")
    for option, parse, specs in (
        ("--fault", parse_fault_spec, faults),
        ("--scenario", parse_scenario_spec, scenarios),
    ):
        for spec in specs:
            try:
                parse(spec)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint=option) from None
    try:
        run_simulator(
            host, port, symbols, seed, list(faults), weight_limit, list(scenarios), ws_port=ws_port
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scenario") from None


@main.command("up")
@click.option("--mexc-sim", "use_sim", is_flag=True, help="Run against the built-in simulator.")
@click.option("--sim-symbols", default=200, show_default=True, type=click.IntRange(1, 5000))
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1, 64))
@click.pass_context
def up(ctx: click.Context, use_sim: bool, sim_symbols: int, concurrency: int) -> None:
    """Migrate, then run worker(s), beat, the web app and Flower (and the simulator) until
    Ctrl-C or SIGTERM. The first lines on stdout say where everything is."""
    from app.supervisor import run_local_stack

    config = settings(ctx)
    configure_logging("cdb-up", config.log_level, config.secret_values())
    sys.exit(run_local_stack(config, use_sim, sim_symbols, concurrency))
