"""A local, deterministic simulation of MEXC's spot REST API v3 (public market data)."""

from app.exchange.simulator.faults import Fault, FaultInjector, parse_fault_spec
from app.exchange.simulator.market import SimulatedMarket
from app.exchange.simulator.scenarios import Scenario, parse_scenario_spec
from app.exchange.simulator.server import SimulatorServer, run_simulator

__all__ = [
    "Fault",
    "FaultInjector",
    "Scenario",
    "SimulatedMarket",
    "SimulatorServer",
    "parse_fault_spec",
    "parse_scenario_spec",
    "run_simulator",
]
