"""``nanokube image import|ls|rm``: the node's image store from the command line (like ``crictl images``).

The commands work on the local node's store directly (no API server involved), so they run on the machine
that holds ``<data-dir>/images``, as the agent's user. The ``cli`` layer may not import the kubelet, so the
store comes in as an argument shaped by ``ImageStoreLike``: ``cmd`` builds the real
``nanokube.kubelet.images.store.ImageStore`` and hands it over. Output follows kubectl's table style
(uppercase headers, columns three spaces apart); ``-o json`` mirrors ``crictl images -o json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TextIO


class ImageLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def repo_tags(self) -> Sequence[str]: ...

    @property
    def repo_digests(self) -> Sequence[str]: ...

    @property
    def size(self) -> int: ...


class ImageStoreLike(Protocol):
    def list(self) -> Sequence[ImageLike]: ...

    async def import_archive(self, path: Path, name: str | None = None) -> Sequence[ImageLike]: ...

    async def remove(self, ref: str, *, force: bool = False) -> Sequence[str]: ...


def add_image_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add ``image`` with its ``import``, ``ls`` and ``rm`` subcommands to the ``nanokube`` parser."""
    p = subparsers.add_parser("image", help="manage the node's container images (import, ls, rm)")
    sub = p.add_subparsers(dest="image_command", required=True, metavar="{import,ls,rm}")
    imp = sub.add_parser("import", help="load docker-archive or OCI-archive tarballs (docker save, skopeo)")
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument("--name", default=None, metavar="REPOSITORY",
                     help="repository for OCI entries that carry only a tag (default: the file's name)")
    ls = sub.add_parser("ls", aliases=["list"], help="list images")
    ls.add_argument("-o", "--output", choices=("wide", "json", "name"), default=None)
    ls.add_argument("-q", "--quiet", action="store_true", help="print image ids only")
    rm = sub.add_parser("rm", aliases=["remove"], help="remove image names, and images left without a name")
    rm.add_argument("refs", nargs="+", metavar="IMAGE")
    rm.add_argument("-f", "--force", action="store_true", help="remove even if a container's rootfs uses it")
    return p


async def run_image_command(args: argparse.Namespace, store: ImageStoreLike, *, out: TextIO | None = None,
                            err: TextIO | None = None) -> int:
    """Run the subcommand ``add_image_parser`` parsed into ``args``; returns the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    command = args.image_command
    if command == "import":
        return await image_import(store, args.files, name=args.name, out=out, err=err)
    if command in ("ls", "list"):
        return image_ls(store, output=args.output, quiet=args.quiet, out=out)
    if command in ("rm", "remove"):
        return await image_rm(store, args.refs, force=args.force, out=out, err=err)
    err.write(f"error: unknown image command {command!r}\n")
    return 2


async def image_import(store: ImageStoreLike, files: Sequence[Path], *, name: str | None = None,
                       out: TextIO, err: TextIO) -> int:
    """Import each archive; prints ``Loaded image: NAME`` per name (``Loaded image ID:`` for unnamed ones)."""
    code = 0
    for path in files:
        try:
            images = await store.import_archive(path, name)
        except Exception as e:  # every failure of one file is reported, the next file still loads
            err.write(f"error: importing {path}: {e}\n")
            code = 1
            continue
        for image in images:
            if image.repo_tags:
                out.writelines(f"Loaded image: {tag}\n" for tag in image.repo_tags)
            else:
                out.write(f"Loaded image ID: {image.id}\n")
    return code


def image_ls(store: ImageStoreLike, *, output: str | None = None, quiet: bool = False, out: TextIO) -> int:
    """Print the images as a table (``IMAGE TAG IMAGE ID SIZE``; ``-o wide`` adds ``DIGEST``)."""
    images = store.list()
    if quiet:
        out.writelines(f"{image.id}\n" for image in images)
        return 0
    if output == "json":
        doc = {"images": [{"id": i.id, "repoTags": list(i.repo_tags), "repoDigests": list(i.repo_digests),
                           "size": str(i.size)} for i in images]}
        out.write(json.dumps(doc, indent=2) + "\n")
        return 0
    if output == "name":
        out.writelines(f"{name}\n" for i in images for name in (i.repo_tags or [i.id]))
        return 0
    headers = ["IMAGE", "TAG", "IMAGE ID", "SIZE"] + (["DIGEST"] if output == "wide" else [])
    rows = []
    for image in images:
        for repo, tag in _names(image):
            row = [repo, tag, short_id(image.id), human_size(image.size)]
            if output == "wide":
                row.append(_digest_for(image, repo))
            rows.append(row)
    out.write(format_table(headers, rows))
    return 0


async def image_rm(store: ImageStoreLike, refs: Sequence[str], *, force: bool = False, out: TextIO,
                   err: TextIO) -> int:
    """Remove each reference; prints ``Untagged:``/``Deleted:`` lines, errors go to ``err`` (exit code 1)."""
    code = 0
    for ref in refs:
        try:
            lines = await store.remove(ref, force=force)
        except Exception as e:  # one bad reference does not stop the others
            err.write(f"error: {e}\n")
            code = 1
            continue
        out.writelines(f"{line}\n" for line in lines)
    return code


def _names(image: ImageLike) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for tag in image.repo_tags:
        repo, _, t = tag.rpartition(":")
        pairs.append((repo, t))
    if not pairs:
        repos = dict.fromkeys(d.partition("@")[0] for d in image.repo_digests)
        pairs = [(repo, "<none>") for repo in repos] or [("<none>", "<none>")]
    return pairs


def _digest_for(image: ImageLike, repo: str) -> str:
    for d in image.repo_digests:
        name, _, digest = d.partition("@")
        if name == repo:
            return short_id(digest)
    return "<none>"


def short_id(image_id: str) -> str:
    """The first 13 hex digits, as ``crictl images`` prints ids."""
    return image_id.partition(":")[2][:13] if ":" in image_id else image_id[:13]


def human_size(size: int) -> str:
    """Decimal units with three significant digits, like Docker and crictl (``2.06MB``)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            text = f"{value:.3g}"
            return f"{text}{unit}"
        value /= 1000
    return f"{size}B"


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in [headers, *rows]]
    return "\n".join(lines) + "\n"
