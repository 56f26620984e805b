#!/usr/bin/env python3
"""Generate the protobuf field table used by ``nanokube.api.protobuf`` from Kubernetes' own sources.

Usage::

    python tools/gen_proto_table.py SRC_DIR [-o src/nanokube/api/protobuf/fields.json.gz]

``SRC_DIR`` is any directory holding checkouts of ``k8s.io/api`` and ``k8s.io/apimachinery`` (for example
``kubernetes/staging/src/k8s.io``, or a directory with the ``kubernetes/api`` and ``kubernetes/apimachinery``
repositories side by side). The script reads only local files; it never fetches anything.

For every ``generated.proto`` found it reads the message structure (field number, scalar/message type, repeated,
map) and, from the Go files of the same package, the struct tags that decide the JSON shape: the ``json`` name,
``omitempty``/``omitzero``, whether the Go field is a pointer and whether an embedded struct is inlined into its
parent (``VolumeSource`` in ``Volume``, ``ProbeHandler`` in ``Probe``). The proto field names are only the
fallback when a Go struct is missing: the Go tags are the truth about the JSON wire form.

Output (gzip'd JSON)::

    {"format": 1,
     "groups": {"apps/v1": "k8s.io.api.apps.v1", "v1": "k8s.io.api.core.v1", ...},
     "lists": ["k8s.io.api.authentication.v1.ExtraValue", ...],     # messages that are a JSON array
     "messages": {"k8s.io.api.core.v1.ConfigMap": {"1": [json, type, flags, key?], ...}, ...}}

A field entry is ``[json_name, type, flags]`` where ``type`` is a scalar (``string``, ``int32``, ``int64``,
``bool``, ``bytes``) or a full message name, and for maps ``[json_name, value_type, flags | MAP, key_type]``.
Flag bits are defined below and mirrored in ``nanokube/api/protobuf/table.py``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPEATED = 1
POINTER = 2
OMITEMPTY = 4
INLINE = 8
MAP = 16
OMITZERO = 32

SCALARS = {"string", "int32", "int64", "uint32", "uint64", "bool", "bytes", "double", "float"}

PACKAGE_RE = re.compile(r"^package\s+([\w.]+)\s*;", re.M)
MESSAGE_RE = re.compile(r"^message\s+(\w+)\s*\{", re.M)
FIELD_RE = re.compile(r"^\s*(optional|repeated|required)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)")
MAP_FIELD_RE = re.compile(r"^\s*map<\s*([\w.]+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)")
GO_STRUCT_RE = re.compile(r"^type\s+(\w+)\s+struct\s*\{\s*$")
GO_TAG_RE = re.compile(r'(\w+):"([^"]*)"')
GROUP_RE = re.compile(r"^//\s*\+groupName=(\S*)", re.M)
GROUP_CONST_RE = re.compile(r'^const\s+GroupName\s*=\s*"([^"]*)"', re.M)


@dataclass
class ProtoField:
    number: int
    name: str
    type: str
    repeated: bool = False
    key: str | None = None  # set for map fields


@dataclass
class GoField:
    json: str
    pointer: bool
    omitempty: bool
    omitzero: bool
    inline: bool


def parse_proto(text: str) -> tuple[str, dict[str, list[ProtoField]], set[str]]:
    """Package name, messages with their fields, and the messages marked ``+protobuf.nullable=true``."""
    package_match = PACKAGE_RE.search(text)
    if not package_match:
        raise ValueError("no package statement")
    package = package_match.group(1)
    messages: dict[str, list[ProtoField]] = {}
    nullable: set[str] = set()
    lines = text.splitlines()
    comment: list[str] = []
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        if current is None:
            match = MESSAGE_RE.match(line)
            if match:
                current = match.group(1)
                messages[current] = []
                if any("+protobuf.nullable=true" in c for c in comment):
                    nullable.add(current)
                comment = []
            elif stripped.startswith("//"):
                comment.append(stripped)
            elif not stripped:
                continue
            else:
                comment = []
            continue
        if stripped == "}":
            current = None
            continue
        field = parse_field_line(line, package)
        if field is not None:
            messages[current].append(field)
    return package, messages, nullable


def qualify(type_name: str, package: str) -> str:
    if type_name in SCALARS:
        return type_name
    if type_name.startswith("."):
        return type_name[1:]
    return f"{package}.{type_name}"


def parse_field_line(line: str, package: str) -> ProtoField | None:
    match = FIELD_RE.match(line)
    if match:
        label, type_name, name, number = match.groups()
        return ProtoField(int(number), name, qualify(type_name, package), repeated=label == "repeated")
    match = MAP_FIELD_RE.match(line)
    if match:
        key, value, name, number = match.groups()
        return ProtoField(int(number), name, qualify(value, package), key=qualify(key, package))
    return None


def parse_go_structs(directory: Path) -> dict[str, dict[int, GoField]]:
    """Every struct of the Go package in ``directory``: protobuf field number -> JSON facts from the tags."""
    structs: dict[str, dict[int, GoField]] = {}
    for path in sorted(directory.glob("*.go")):
        if path.name.endswith("_test.go") or path.name.endswith(".pb.go"):
            continue
        current: str | None = None
        for line in path.read_text(encoding="utf-8").splitlines():
            if current is None:
                match = GO_STRUCT_RE.match(line)
                if match:
                    current = match.group(1)
                    structs.setdefault(current, {})
                continue
            if line.startswith("}"):
                current = None
                continue
            parsed = parse_go_field(line)
            if parsed is not None:
                number, field = parsed
                structs[current][number] = field
    return structs


def parse_go_field(line: str) -> tuple[int, GoField] | None:
    code = line.strip()
    if code.startswith("//") or "`" not in code:
        return None
    head, _, rest = code.partition("`")
    tags = dict(GO_TAG_RE.findall(rest.rpartition("`")[0]))
    if "protobuf" not in tags or tags["protobuf"] == "-":
        return None
    parts = head.split()
    embedded = len(parts) == 1
    go_type = parts[-1]
    number = int(tags["protobuf"].split(",")[1])
    json_tag = tags.get("json", "")
    json_name, *options = json_tag.split(",")
    inline = embedded and (json_name == "" or "inline" in options)
    if not json_name and not inline:
        json_name = parts[0] if not embedded else go_type.lstrip("*").rpartition(".")[2]
    return number, GoField(
        json=json_name,
        pointer=go_type.startswith("*"),
        omitempty="omitempty" in options,
        omitzero="omitzero" in options,
        inline=inline,
    )


def package_group(directory: Path) -> str | None:
    """The API group of a Go package: ``+groupName=`` in doc.go, else ``const GroupName`` in register.go."""
    for file_name, pattern in (("doc.go", GROUP_RE), ("register.go", GROUP_CONST_RE)):
        path = directory / file_name
        match = pattern.search(path.read_text(encoding="utf-8")) if path.exists() else None
        if match is not None:
            return match.group(1)
    return None


def group_version(package: str, group: str) -> str:
    version = package.rsplit(".", 1)[1]
    return f"{group}/{version}" if group else version


def field_entry(field: ProtoField, go: GoField | None) -> list[object]:
    flags = 0
    if go is None:
        json_name = field.name
        flags |= OMITEMPTY
    else:
        json_name = go.json
        flags |= (POINTER if go.pointer else 0) | (OMITEMPTY if go.omitempty else 0)
        flags |= (INLINE if go.inline else 0) | (OMITZERO if go.omitzero else 0)
    if field.repeated:
        flags |= REPEATED
    if field.key is not None:
        return [json_name, field.type, flags | MAP, field.key]
    return [json_name, field.type, flags]


def build_table(root: Path) -> dict[str, object]:
    groups: dict[str, str] = {}
    lists: set[str] = set()
    messages: dict[str, dict[str, list[object]]] = {}
    missing: list[str] = []
    for proto in sorted(root.rglob("generated.proto")):
        package, proto_messages, nullable = parse_proto(proto.read_text(encoding="utf-8"))
        go_structs = parse_go_structs(proto.parent)
        group = package_group(proto.parent)
        if group is not None:
            groups.setdefault(group_version(package, group), package)
        lists.update(f"{package}.{name}" for name in nullable)
        for name, fields in proto_messages.items():
            struct = go_structs.get(name)
            entries: dict[str, list[object]] = {}
            for field in fields:
                go = struct.get(field.number) if struct is not None else None
                if struct is not None and go is None and fields:
                    missing.append(f"{package}.{name}.{field.name}")
                entries[str(field.number)] = field_entry(field, go)
            messages[f"{package}.{name}"] = entries
    if missing:
        print(
            f"note: {len(missing)} proto fields without a Go struct tag, using proto names:", file=sys.stderr
        )
        for item in missing[:40]:
            print(f"  {item}", file=sys.stderr)
    return {"format": 1, "groups": dict(sorted(groups.items())), "lists": sorted(lists), "messages": messages}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="directory holding k8s.io/api and k8s.io/apimachinery sources")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "src/nanokube/api/protobuf/fields.json.gz",
    )
    args = parser.parse_args(argv)
    table = build_table(args.src)
    data = json.dumps(table, separators=(",", ":"), sort_keys=False).encode()
    args.output.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    messages = table["messages"]
    assert isinstance(messages, dict)
    print(
        f"{len(messages)} messages, {len(data)} bytes JSON, {args.output.stat().st_size} bytes gzip -> {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
