"""Test infrastructure of pf-status-relay (never imported by product code).

This file makes ``hack`` a package so that tests and ``python -m hack.testbed...``
can import the testbed from the repository root.
"""
