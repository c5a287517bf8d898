"""Render manifests as YAML that reads well in review and regenerates byte for byte.

Keys are sorted, as ``operator-sdk`` and ``opm`` write them, so the output does not
depend on the order in which the generators build their dicts. Multi-line strings
(the CSV description, ``alm-examples``) become literal blocks instead of one line
full of ``\\n`` escapes.
"""

from __future__ import annotations

from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _represent_str)


def dump(document: Any) -> str:
    """Return DOCUMENT as one YAML document with sorted keys."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=True, width=100, allow_unicode=True)


def dump_all(documents: list[Any]) -> str:
    """Return DOCUMENTS as a YAML stream with ``---`` between the documents.

    The first document has no ``---`` so that a comment header above it belongs to it
    and no reader sees an empty leading document.
    """
    return "---\n".join(dump(document) for document in documents)
