"""Layer extraction into overlayfs snapshots: whiteouts, opaque directories, diff ids, hostile tarballs, and the
merged view the kernel gives when the snapshots are stacked (needs root)."""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

import pytest
from images_helpers import (
    Entry,
    busybox_entries,
    digest_of,
    overlay_mount,
    require_root,
    tar_entries,
    tree,
    whiteout_entries,
)

from nanokube.kubelet.images.content import ContentStore, DigestMismatch
from nanokube.kubelet.images.unpack import OPAQUE_XATTR, Snapshots, UnpackError, chain_ids, unpack_layer


@pytest.fixture(autouse=True)
def _root() -> None:
    require_root()


def _blob(tmp_path: Path, data: bytes, name: str = "layer") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_whiteouts_and_opaque_dirs_become_overlay_form(tmp_path: Path) -> None:
    raw = tar_entries(whiteout_entries())
    info = unpack_layer(_blob(tmp_path, gzip.compress(raw)), tmp_path / "fs", digest_of(raw))
    assert info.diff_id == digest_of(raw)
    motd = os.lstat(tmp_path / "fs/etc/motd")
    assert stat.S_ISCHR(motd.st_mode) and motd.st_rdev == os.makedev(0, 0)
    assert os.getxattr(tmp_path / "fs/var/www", OPAQUE_XATTR) == b"y"
    assert not (tmp_path / "fs/var/www/.wh..wh..opq").exists()
    assert (tmp_path / "fs/var/www/index.html").read_text() == "new index\n"
    assert os.stat(tmp_path / "fs/etc/added").st_ino == os.stat(tmp_path / "fs/etc/added-link").st_ino


def test_stacked_snapshots_give_the_merged_view(tmp_path: Path) -> None:
    base, top = tar_entries(busybox_entries()), tar_entries(whiteout_entries())
    snaps = Snapshots(tmp_path / "snapshots")
    chains = chain_ids([digest_of(base), digest_of(top)])
    for data, chain in ((base, chains[0]), (top, chains[1])):
        snaps.create(chain, _blob(tmp_path, gzip.compress(data), chain[7:]), digest_of(data))
    lower = [snaps.path(chains[1]), snaps.path(chains[0])]
    with overlay_mount(lower, tmp_path / "merged") as merged:
        view = tree(merged)
        assert "etc/motd" not in view  # whited out
        assert view["etc/passwd"].startswith("root:x:0:0")  # from the lower layer
        assert view["etc/added"] == "added\n"
        assert sorted(k for k in view if k.startswith("var/www/")) == ["var/www/index.html"]  # opaque
        assert view["var/www/index.html"] == "new index\n"
        assert view["bin/sh"] == "-> /bin/busybox"
        assert os.access(merged / "bin/busybox", os.X_OK)
    assert snaps.mounted() == set()
    assert set(snaps.chain_ids()) == set(chains)


def test_snapshots_report_overlay_mounts_that_use_them(tmp_path: Path) -> None:
    raw = tar_entries([Entry("a", "file", "1")])
    snaps = Snapshots(tmp_path / "snapshots")
    chain = digest_of(raw)
    snaps.create(chain, _blob(tmp_path, raw), chain)
    with overlay_mount([snaps.path(chain)], tmp_path / "m"):
        assert snaps.mounted() == {chain}
    assert snaps.create(chain, _blob(tmp_path, raw), chain) is None  # already there: nothing extracted


def test_chain_ids_follow_the_oci_definition() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert chain_ids([a]) == [a]
    assert chain_ids([a, b])[1] == digest_of(f"{a} {b}".encode())
    assert chain_ids([]) == []


def test_diff_id_mismatch_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    raw = tar_entries([Entry("a", "file", "1")])
    snaps = Snapshots(tmp_path / "snapshots")
    wrong = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatch, match="diff id mismatch"):
        snaps.create(wrong, _blob(tmp_path, gzip.compress(raw)), wrong)
    assert list((tmp_path / "snapshots").iterdir()) == []


@pytest.mark.parametrize("entries", [
    [Entry("../escape", "file", "x")],
    [Entry("a/../../escape", "file", "x")],
    [Entry("link", "symlink", "/tmp"), Entry("link/escape", "file", "x")],
    [Entry("link", "symlink", ".."), Entry("link/escape", "file", "x")],
    [Entry("h", "hardlink", "../outside")],
    [Entry("h", "hardlink", "not-in-layer")],
])
def test_hostile_layers_are_refused(tmp_path: Path, entries: list[Entry]) -> None:
    with pytest.raises(UnpackError):
        unpack_layer(_blob(tmp_path, tar_entries(entries)), tmp_path / "fs")
    assert not (tmp_path / "escape").exists()
    assert not Path("/tmp/escape").exists()


def test_absolute_member_names_stay_inside(tmp_path: Path) -> None:
    unpack_layer(_blob(tmp_path, tar_entries([Entry("/abs/file", "file", "x")])), tmp_path / "fs")
    assert (tmp_path / "fs/abs/file").read_text() == "x"


def test_later_members_replace_earlier_ones_of_another_type(tmp_path: Path) -> None:
    entries = [Entry("x", "dir"), Entry("x/inner", "file", "1"), Entry("x", "file", "now a file"),
               Entry("y", "file", "old"), Entry("y", "symlink", "target")]
    unpack_layer(_blob(tmp_path, tar_entries(entries)), tmp_path / "fs")
    assert (tmp_path / "fs/x").read_text() == "now a file"
    assert os.readlink(tmp_path / "fs/y") == "target"


def test_modes_owners_and_setuid_are_kept(tmp_path: Path) -> None:
    entries = [Entry("bin", "dir", mode=0o711), Entry("bin/su", "file", "x", mode=0o4755)]
    data = tar_entries(entries)
    unpack_layer(_blob(tmp_path, data), tmp_path / "fs")
    assert stat.S_IMODE(os.stat(tmp_path / "fs/bin/su").st_mode) == 0o4755
    assert stat.S_IMODE(os.stat(tmp_path / "fs/bin").st_mode) == 0o711
    assert os.stat(tmp_path / "fs/bin/su").st_mtime == 1_700_000_000


def test_truncated_layers_fail_cleanly(tmp_path: Path) -> None:
    data = gzip.compress(tar_entries(busybox_entries()))
    with pytest.raises(UnpackError):
        unpack_layer(_blob(tmp_path, data[: len(data) // 2]), tmp_path / "fs")


def test_content_store_verifies_on_write(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    digest = store.put_bytes(b"hello")
    assert digest == digest_of(b"hello") and store.has(digest) and store.verify(digest)
    with pytest.raises(DigestMismatch, match="digest mismatch"):
        store.put_bytes(b"hellO", digest_of(b"hello"))
    with pytest.raises(DigestMismatch, match="larger"), store.writer(digest_of(b"abc"), 3) as w:
        w.write(b"abcd")
    assert list((tmp_path / "ingest").iterdir()) == []  # nothing half-written stays behind
    assert list(store.digests()) == [digest]
    with pytest.raises(ValueError):
        store.path("md5:abc")
