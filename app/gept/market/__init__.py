"""Market: the OSRS Wiki client and the simulator."""
