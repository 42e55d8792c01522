"""For mypy: `monitoring_render`, which the tests import by bare name from tests/unit/monitoring
(on pytest's sys.path); see README.md."""

from tests.unit.monitoring.monitoring_render import *  # noqa: F403 - the stub is the whole module
