"""Engine unit tests (a package: its test_contract.py shares a name with the integration one)."""
