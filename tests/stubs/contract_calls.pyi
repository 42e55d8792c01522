"""For mypy: `contract_calls`, which the tests import by bare name from tests/integration/engine
(on pytest's sys.path); see README.md."""

from tests.integration.engine.contract_calls import *  # noqa: F403 - the stub is the whole module
