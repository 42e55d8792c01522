"""The lab: a two-host copy of production on this machine."""
