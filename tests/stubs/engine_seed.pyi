"""For mypy: `engine_seed`, which the tests import by bare name from tests/integration/engine
(on pytest's sys.path); see README.md."""

from tests.integration.engine.engine_seed import *  # noqa: F403 - the stub is the whole module
