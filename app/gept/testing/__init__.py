"""Helpers for tests and benchmarks, never imported by the runtime packages.

* `pgserver`: a throwaway PostgreSQL from the installed binaries;
* `sshd`: a throwaway OpenSSH server on loopback with a pyinfra inventory naming it;
* `history`: simulator price history bulk-loaded into a database;
* `person`: a person with an SSH key who signs approvals.
"""
