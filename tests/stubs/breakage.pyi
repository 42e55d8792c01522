"""For mypy: `breakage`, which the tests import by bare name from tests/lab
(on pytest's sys.path); see README.md."""

from tests.lab.breakage import *  # noqa: F403 - the stub is the whole module
