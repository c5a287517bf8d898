"""Generators for the manifests that ``make manifests``, ``make bundle`` and ``make catalog`` write."""
