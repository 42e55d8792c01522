"""GePT Ops: the software GePT's servers run, and the code that runs the servers."""

__version__ = "0.1.0"
