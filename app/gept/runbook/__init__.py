"""Executable YAML runbooks through Fabric."""
