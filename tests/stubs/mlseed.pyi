"""For mypy: `mlseed`, which the tests import by bare name from tests/integration
(on pytest's sys.path); see README.md."""

from tests.integration.mlseed import *  # noqa: F403 - the stub is the whole module
