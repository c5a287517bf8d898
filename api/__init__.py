"""Shared contract of pf-status-relay: the PFLACPMonitor API and the agent report format.

Both the controller and the node agent import this package; it imports neither of
them, so the two processes stay independent and meet only through the API server.
"""
