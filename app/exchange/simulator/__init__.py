"""A local, deterministic simulation of MEXC's spot API v3: public REST endpoints and the
public WebSocket streams, from one simulated market (see docs/SIMULATOR.md)."""

from app.exchange.simulator.faults import Fault, FaultInjector, parse_fault_spec
from app.exchange.simulator.market import SimulatedMarket
from app.exchange.simulator.scenarios import Scenario, parse_scenario_spec
from app.exchange.simulator.server import SimulatorServer, run_simulator
from app.exchange.simulator.ws_server import WsSettings

__all__ = [
    "Fault",
    "FaultInjector",
    "Scenario",
    "SimulatedMarket",
    "SimulatorServer",
    "WsSettings",
    "parse_fault_spec",
    "parse_scenario_spec",
    "run_simulator",
]
