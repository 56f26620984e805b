"""Image reference parsing and normalisation (Docker's rules) and the manifest helpers."""

from __future__ import annotations

import pytest

from nanokube.kubelet.images import manifest as mf
from nanokube.kubelet.images.refs import InvalidReference, is_image_id, parse, parse_loose, short_id

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "full", "familiar", "host"), [
    ("nginx", "docker.io/library/nginx:latest", "nginx:latest", "registry-1.docker.io"),
    ("nginx:1.25", "docker.io/library/nginx:1.25", "nginx:1.25", "registry-1.docker.io"),
    ("library/nginx", "docker.io/library/nginx:latest", "nginx:latest", "registry-1.docker.io"),
    ("docker.io/nginx", "docker.io/library/nginx:latest", "nginx:latest", "registry-1.docker.io"),
    ("index.docker.io/library/nginx", "docker.io/library/nginx:latest", "nginx:latest", "registry-1.docker.io"),
    ("me/app:v1", "docker.io/me/app:v1", "me/app:v1", "registry-1.docker.io"),
    ("127.0.0.1:5000/busybox:1.36", "127.0.0.1:5000/busybox:1.36", "127.0.0.1:5000/busybox:1.36",
     "127.0.0.1:5000"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest", "localhost"),
    ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9", "registry.k8s.io"),
    ("ghcr.io/a/b/c:x_y.z-1", "ghcr.io/a/b/c:x_y.z-1", "ghcr.io/a/b/c:x_y.z-1", "ghcr.io"),
    (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}", "registry-1.docker.io"),
    (f"busybox:1.36@{DIGEST}", f"docker.io/library/busybox:1.36@{DIGEST}", f"busybox:1.36@{DIGEST}",
     "registry-1.docker.io"),
    ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest", "[::1]:5000"),
])
def test_normalises_like_docker(text: str, full: str, familiar: str, host: str) -> None:
    ref = parse(text)
    assert str(ref) == full
    assert ref.familiar() == familiar
    assert ref.registry_host == host


def test_parts_of_a_reference() -> None:
    ref = parse(f"127.0.0.1:5000/team/app:2@{DIGEST}")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("127.0.0.1:5000", "team/app", "2", DIGEST)
    assert ref.object == DIGEST  # a pinned digest wins over the tag when asking the registry
    assert ref.tagged() == "127.0.0.1:5000/team/app:2"
    assert parse("busybox").object == "latest"
    assert parse_loose("busybox").tag == ""
    assert parse(f"busybox@{DIGEST}").tagged() == ""


@pytest.mark.parametrize(("text", "message"), [
    ("Nginx", "must be lowercase"),
    ("docker.io/Library/nginx", "must be lowercase"),
    ("ab" * 32, "64-byte hexadecimal"),
    ("nginx:", "bad tag"),
    ("nginx:-x", "bad tag"),
    ("nginx@sha256:123", "bad digest"),
    ("", "invalid reference format"),
    (" nginx", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("x" * 300, "more than 255"),
])
def test_rejects_bad_names(text: str, message: str) -> None:
    with pytest.raises(InvalidReference, match=message) as info:
        parse(text)
    assert info.value.reason == "InvalidImageName"


def test_ids() -> None:
    assert is_image_id(DIGEST)
    assert not is_image_id("busybox")
    assert short_id(DIGEST) == "ab" * 6 + "a"


# -- manifests ------------------------------------------------------------------------------------------------

def _desc(arch: str, n: int, variant: str = "", os: str = "linux") -> dict[str, object]:
    platform = {"os": os, "architecture": arch} | ({"variant": variant} if variant else {})
    return {"mediaType": mf.OCI_MANIFEST, "digest": f"sha256:{n:064x}", "size": 10, "platform": platform}


def test_platform_selection_prefers_exact_matches() -> None:
    index = mf.parse_document(mf.OCI_INDEX, {"manifests": [
        _desc("unknown", 1, os="unknown"), _desc("arm64", 2, "v8"), _desc("amd64", 3), _desc("arm", 4, "v7"),
        _desc("arm", 5, "v6")]})
    assert isinstance(index, mf.Index)
    assert mf.select_platform(index, mf.Platform("linux", "amd64")).digest.endswith("3")
    assert mf.select_platform(index, mf.Platform("linux", "arm64", "v8")).digest.endswith("2")
    assert mf.select_platform(index, mf.Platform("linux", "arm", "v6")).digest.endswith("5")
    with pytest.raises(mf.ManifestError, match="no match for platform"):
        mf.select_platform(index, mf.Platform("linux", "s390x"))


def test_manifest_kinds() -> None:
    docker = mf.parse_document("", {"schemaVersion": 2, "mediaType": mf.DOCKER_MANIFEST,
                                    "config": {"digest": DIGEST, "size": 3, "mediaType": mf.DOCKER_CONFIG},
                                    "layers": [{"digest": DIGEST, "size": 4}]})
    assert isinstance(docker, mf.Manifest)
    assert docker.layers[0].media_type == mf.DOCKER_LAYER_GZIP
    listed = mf.parse_document(mf.DOCKER_LIST, {"manifests": []})
    assert isinstance(listed, mf.Index)
    with pytest.raises(mf.ManifestError, match="schema 1"):
        mf.parse_document("", {"schemaVersion": 1, "name": "x"})
    with pytest.raises(mf.ManifestError, match="unsupported"):
        mf.parse_document("text/plain", {"foo": 1})


def test_image_config_merges_with_a_container_like_kubernetes() -> None:
    cfg = mf.ImageConfig.from_json({"config": {"Entrypoint": ["/ep"], "Cmd": ["a", "b"],
                                               "Env": ["PATH=/bin", "A=1"], "WorkingDir": "/w", "User": "1000"}})
    assert cfg.argv([], []) == ["/ep", "a", "b"]
    assert cfg.argv([], ["x"]) == ["/ep", "x"]
    assert cfg.argv(["/cmd"], []) == ["/cmd"]
    assert cfg.argv(["/cmd"], ["y"]) == ["/cmd", "y"]
    assert cfg.merged_env([("A", "2"), ("B", "3")]) == [("PATH", "/bin"), ("A", "2"), ("B", "3")]
    assert (cfg.working_dir, cfg.user) == ("/w", "1000")
    assert mf.diff_ids({"rootfs": {"type": "layers", "diff_ids": [DIGEST]}}) == [DIGEST]
    with pytest.raises(mf.ManifestError):
        mf.diff_ids({})


def test_manifests_served_as_plain_json_are_recognised_by_shape() -> None:
    doc = {"schemaVersion": 2, "config": {"digest": DIGEST, "size": 1}, "layers": []}
    assert isinstance(mf.parse_document("application/json", doc), mf.Manifest)
    assert isinstance(mf.parse_document("application/json", {"schemaVersion": 2, "manifests": []}), mf.Index)
