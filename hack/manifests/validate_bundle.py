"""Check a registry+v1 bundle directory: ``python -m hack.manifests.validate_bundle DIR``.

These are the project's own checks of OLM's bundle format. They run without Go and
also cover what the Go validator of github.com/operator-framework/api v0.9.1 skips:
``metadata/annotations.yaml`` (which its loader does not read) and descriptor paths
that must name fields of the CRD schema. The CSV rules live in validate_csv.py.
It prints one line per finding and exits 1 when there is an error.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hack.manifests.csv import EXTRA_KINDS
from hack.manifests.validate_csv import Finding, check_csv, error, warning

# Keys of metadata/annotations.yaml with the value the registry+v1 format fixes, or
# None where any non-empty value is valid.
REQUIRED_ANNOTATIONS: dict[str, str | None] = {
    "operators.operatorframework.io.bundle.mediatype.v1": "registry+v1",
    "operators.operatorframework.io.bundle.manifests.v1": "manifests/",
    "operators.operatorframework.io.bundle.metadata.v1": "metadata/",
    "operators.operatorframework.io.bundle.package.v1": None,
    "operators.operatorframework.io.bundle.channels.v1": None,
}
DEFAULT_CHANNEL_KEY = "operators.operatorframework.io.bundle.channel.default.v1"
PACKAGE_KEY = "operators.operatorframework.io.bundle.package.v1"
CHANNELS_KEY = "operators.operatorframework.io.bundle.channels.v1"
# OLM unpacks a bundle into a ConfigMap, which the API server limits to 1 MiB.
MAX_MANIFESTS_BYTES = 1024 * 1024
_ALLOWED_KINDS = EXTRA_KINDS | {
    "ClusterServiceVersion",
    "CustomResourceDefinition",
    "ServiceAccount",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
}


@dataclass
class Bundle:
    """Parsed content of a bundle directory."""

    directory: Path
    objects: list[dict[str, Any]] = field(default_factory=list)
    annotations: dict[str, Any] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj.get("kind") == kind]


def load(directory: Path) -> tuple[Bundle, list[Finding]]:
    """Parse DIRECTORY's manifests and annotations, returning the parse problems."""
    bundle = Bundle(directory)
    findings: list[Finding] = []
    manifests = directory / "manifests"
    if not manifests.is_dir():
        return bundle, [error(f"{manifests} not found")]

    size = 0
    for path in sorted(manifests.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix not in (".yaml", ".yml", ".json"):
            findings.append(error(f"{path.name}: not a YAML or JSON file"))
            continue
        size += path.stat().st_size
        try:
            documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        except yaml.YAMLError as exc:
            findings.append(error(f"{path.name}: invalid YAML: {exc}"))
            continue
        if len(documents) != 1:
            findings.append(error(f"{path.name}: contains {len(documents)} objects, expected 1"))
        bundle.objects.extend(documents)
    if size > MAX_MANIFESTS_BYTES:
        findings.append(
            error(f"manifests/ is {size} bytes; OLM's ConfigMap limit is {MAX_MANIFESTS_BYTES}")
        )

    annotations_file = directory / "metadata" / "annotations.yaml"
    if not annotations_file.is_file():
        findings.append(error(f"{annotations_file} not found"))
    else:
        content = yaml.safe_load(annotations_file.read_text()) or {}
        bundle.annotations = content.get("annotations") or {}
    return bundle, findings


def check_annotations_file(bundle: Bundle) -> list[Finding]:
    """Check metadata/annotations.yaml: format keys, package and channels."""
    annotations = bundle.annotations
    findings = []
    for key, expected in REQUIRED_ANNOTATIONS.items():
        value = annotations.get(key)
        if not value:
            findings.append(error(f"annotations.yaml: {key} is missing"))
        elif expected is not None and value != expected:
            findings.append(error(f"annotations.yaml: {key} is {value!r}, expected {expected!r}"))
    channels = [c.strip() for c in str(annotations.get(CHANNELS_KEY, "")).split(",") if c.strip()]
    default = annotations.get(DEFAULT_CHANNEL_KEY)
    if default is None and len(channels) > 1:
        findings.append(
            error(
                f"annotations.yaml: {DEFAULT_CHANNEL_KEY} is missing and there are several channels"
            )
        )
    if default is not None and default not in channels:
        findings.append(
            error(f"annotations.yaml: default channel {default!r} is not in channels {channels}")
        )
    return findings


def check_objects(bundle: Bundle) -> list[Finding]:
    """Check that every manifest has a name and a kind that a bundle may carry."""
    findings = []
    csvs = bundle.of_kind("ClusterServiceVersion")
    if len(csvs) != 1:
        findings.append(
            error(f"manifests/ contains {len(csvs)} ClusterServiceVersions, expected 1")
        )
    for obj in bundle.objects:
        kind = obj.get("kind")
        if not obj.get("apiVersion") or not kind or not (obj.get("metadata") or {}).get("name"):
            findings.append(error(f"an object lacks apiVersion, kind or metadata.name: {kind}"))
        elif kind not in _ALLOWED_KINDS:
            findings.append(
                error(
                    f"{kind} {obj['metadata']['name']} is not a kind that a "
                    "registry+v1 bundle may carry"
                )
            )
    package = bundle.annotations.get(PACKAGE_KEY)
    if csvs and package and not str(csvs[0]["metadata"]["name"]).startswith(f"{package}."):
        findings.append(
            warning(
                f"CSV name {csvs[0]['metadata']['name']} does not start with "
                f"the package name {package}."
            )
        )
    return findings


_SEGMENT = re.compile(r"^(?P<name>[^\[\]]+)(?P<indices>(\[\d+\])*)$")


def _schema_has_path(schema: dict[str, Any], path: str) -> bool:
    """Return whether the descriptor PATH, such as ``nodes[0].name``, names a field of SCHEMA.

    A free-form object (preserve-unknown-fields or additionalProperties) accepts any
    field below it.
    """
    node = schema
    for segment in path.split("."):
        match = _SEGMENT.match(segment)
        if match is None:
            return False
        if node.get("x-kubernetes-preserve-unknown-fields") or (
            node.get("additionalProperties") and "properties" not in node
        ):
            return True
        properties = node.get("properties") or {}
        if match["name"] not in properties:
            return False
        node = properties[match["name"]]
        for _ in range(match["indices"].count("[")):
            if node.get("type") != "array":
                return False
            node = node.get("items") or {}
    return True


def check_owned_crds(bundle: Bundle) -> list[Finding]:
    """Check that owned CRDs and CRD files match: name, group, version, kind, descriptors."""
    csvs = bundle.of_kind("ClusterServiceVersion")
    if not csvs:
        return []
    owned = (csvs[0].get("spec", {}).get("customresourcedefinitions") or {}).get("owned") or []
    crds = {crd["metadata"]["name"]: crd for crd in bundle.of_kind("CustomResourceDefinition")}
    findings = []
    for entry in owned:
        name = entry.get("name", "")
        crd = crds.get(name)
        if crd is None:
            findings.append(error(f"owned CRD {name} has no CRD file in manifests/"))
            continue
        spec = crd["spec"]
        if name != f"{spec['names']['plural']}.{spec['group']}":
            findings.append(error(f"CRD {name} is not named <plural>.<group>"))
        if entry.get("kind") != spec["names"]["kind"]:
            findings.append(
                error(
                    f"owned CRD {name} has kind {entry.get('kind')}, the CRD "
                    f"{spec['names']['kind']}"
                )
            )
        versions = {v["name"]: v for v in spec.get("versions", []) if v.get("served")}
        version = versions.get(entry.get("version", ""))
        if version is None:
            findings.append(
                error(
                    f"owned CRD {name} names version {entry.get('version')}, "
                    f"which the CRD does not serve ({sorted(versions)})"
                )
            )
            continue
        for key in ("displayName", "description"):
            if not entry.get(key):
                findings.append(warning(f"owned CRD {name} has no {key}"))
        schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
        for section, root in (("specDescriptors", "spec"), ("statusDescriptors", "status")):
            root_schema = (schema.get("properties") or {}).get(root) or {}
            for descriptor in entry.get(section) or []:
                path = descriptor.get("path", "")
                if not _schema_has_path(root_schema, path):
                    findings.append(
                        error(
                            f"owned CRD {name}: {section} path {path!r} is not a "
                            f"field of .{root} in the CRD schema"
                        )
                    )
    for name in sorted(set(crds) - {entry.get("name") for entry in owned}):
        findings.append(error(f"CRD {name} is in manifests/ but the CSV does not own it"))
    return findings


def validate(directory: Path) -> list[Finding]:
    """Return every finding of the bundle in DIRECTORY."""
    bundle, findings = load(directory)
    findings += check_annotations_file(bundle)
    findings += check_objects(bundle)
    findings += check_owned_crds(bundle)
    for the_csv in bundle.of_kind("ClusterServiceVersion"):
        findings += check_csv(the_csv)
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="bundle directory (contains manifests/)")
    args = parser.parse_args(argv)

    findings = validate(args.directory)
    for finding in findings:
        print(finding)
    errors = sum(finding.level == "ERROR" for finding in findings)
    print(f"bundle {args.directory}: {errors} errors, {len(findings) - errors} warnings")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
