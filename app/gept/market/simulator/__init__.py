"""The market simulator: a deterministic synthetic market and an HTTP server with faults.

Example:
    >>> from gept.market.simulator import SimulatorServer
    >>> with SimulatorServer(items=50, seed=1) as sim:   # doctest: +SKIP
    ...     client = WikiClient(sim.url, "gept-tests/0.1 (ops@example.org)")
"""

from gept.market.simulator.catalogue import DEFAULT_ITEMS
from gept.market.simulator.faults import Fault, FaultPlan, SimClock
from gept.market.simulator.market import MarketHistory, SyntheticMarket
from gept.market.simulator.server import SimulatorServer

__all__ = ["DEFAULT_ITEMS", "Fault", "FaultPlan", "MarketHistory", "SimClock", "SimulatorServer",
           "SyntheticMarket"]
