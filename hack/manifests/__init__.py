"""Generators for the files that make manifests, make bundle and make catalog write."""
