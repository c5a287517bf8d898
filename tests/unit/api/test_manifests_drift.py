"""The committed CRD files equal a fresh generation from api/ (run `make manifests` to fix)."""

from __future__ import annotations

from hack.manifests.generate import generated_files


def test_crd_files_match_models() -> None:
    stale = [
        str(path)
        for path, content in generated_files().items()
        if not path.exists() or path.read_text() != content
    ]

    assert stale == [], "out of date; run `make manifests`"


def test_crd_schema_is_structural() -> None:
    import yaml

    from hack.manifests.crd import build_crd

    text = yaml.safe_dump(build_crd())

    for forbidden in ("$ref", "anyOf", "title:", "$defs"):
        assert forbidden not in text
