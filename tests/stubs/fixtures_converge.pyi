"""For mypy: `fixtures_converge`, which the tests import by bare name from tests/lab
(on pytest's sys.path); see README.md."""

from tests.lab.fixtures_converge import *  # noqa: F403 - the stub is the whole module
