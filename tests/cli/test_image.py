"""``nanokube image import|ls|rm`` against a real ImageStore, through the argparse wiring cmd uses."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "kubelet"))

from images_helpers import (
    build_image,
    busybox_entries,
    require_root,
    tar_directory,
    tar_entries,
    whiteout_entries,
    write_docker_archive,
    write_oci_layout,
)

from nanokube.cli.image import add_image_parser, format_table, human_size, run_image_command
from nanokube.kubelet.images.store import ImageStore


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nanokube")
    add_image_parser(parser.add_subparsers(dest="command"))
    return parser


async def _run(store: ImageStore, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await run_image_command(_parser().parse_args(["image", *argv]), store, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


async def test_import_ls_rm(tmp_path: Path) -> None:
    require_root()
    busybox = build_image([tar_entries(busybox_entries()), tar_entries(whiteout_entries())])
    small = build_image([tar_entries(whiteout_entries())])
    write_docker_archive(tmp_path / "bb.tar", busybox, ["busybox:1.36", "127.0.0.1:5000/busybox:test"])
    write_oci_layout(tmp_path / "layout", [(small, "v2")])
    tar_directory(tmp_path / "layout", tmp_path / "small.tar")
    store = ImageStore(tmp_path / "images")

    code, out, err = await _run(store, "import", str(tmp_path / "bb.tar"), str(tmp_path / "small.tar"),
                                str(tmp_path / "missing.tar"))
    assert code == 1 and "missing.tar" in err
    assert out.splitlines() == ["Loaded image: docker.io/library/busybox:1.36",
                                "Loaded image: 127.0.0.1:5000/busybox:test",
                                "Loaded image: docker.io/library/small:v2"]

    code, out, _ = await _run(store, "ls")
    bb_id, small_id = busybox.config_digest[7:20], small.config_digest[7:20]
    bb_size = human_size(store.require("busybox:1.36").size)
    small_size = human_size(store.require("small:v2").size)
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
    assert sorted(rows[1:]) == sorted([["127.0.0.1:5000/busybox", "test", bb_id, bb_size],
                                       ["docker.io/library/busybox", "1.36", bb_id, bb_size],
                                       ["docker.io/library/small", "v2", small_id, small_size]])
    assert out.splitlines()[0].index("TAG") == out.splitlines()[1].index(rows[1][1])  # aligned columns

    code, out, _ = await _run(store, "ls", "-o", "json")
    doc = json.loads(out)
    assert {i["id"] for i in doc["images"]} == {busybox.config_digest, small.config_digest}
    code, out, _ = await _run(store, "ls", "-q")
    assert sorted(out.split()) == sorted([busybox.config_digest, small.config_digest])

    code, out, err = await _run(store, "rm", "busybox:1.36", "nosuch:1")
    assert code == 1 and "not found" in err
    assert out.splitlines() == ["Untagged: docker.io/library/busybox:1.36"]
    code, out, _ = await _run(store, "rm", "127.0.0.1:5000/busybox:test", small_id)
    assert code == 0
    assert out.splitlines() == ["Untagged: 127.0.0.1:5000/busybox:test", f"Deleted: {busybox.config_digest}",
                                "Untagged: docker.io/library/small:v2", f"Deleted: {small.config_digest}"]
    code, out, _ = await _run(store, "ls")
    assert out.splitlines() == ["IMAGE   TAG   IMAGE ID   SIZE"]


@pytest.mark.parametrize(("size", "text"), [(0, "0B"), (999, "999B"), (2_060_000, "2.06MB"), (1_500, "1.5kB"),
                                            (3 * 10**9, "3GB")])
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


def test_table_format() -> None:
    assert format_table(["A", "LONGER"], [["xyz", "1"]]) == "A     LONGER\nxyz   1\n"
