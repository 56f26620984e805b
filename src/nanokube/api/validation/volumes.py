"""Pod volumes: names, exactly one source per volume, and the checks of the sources nanokube can serve.

Mirrors ``ValidateVolumes``/``validateVolumeSource``: a volume needs a DNS-1123 label name unique in the pod
and exactly one source; extra sources are ``Forbidden: may not specify more than 1 volume type`` (on the path
Kubernetes prints, including its historic spellings). Source-specific checks cover emptyDir, hostPath,
configMap, secret, persistentVolumeClaim, nfs, projected, downwardAPI, csi and ephemeral; other in-tree
sources are accepted as they are. Returns the valid volume names so container mounts can be checked.
"""

from __future__ import annotations

import posixpath
from typing import Any

from . import formats, quantities
from .field import (
    Errors,
    as_dict,
    as_int,
    as_list,
    as_str,
    child,
    duplicate,
    forbidden,
    index,
    invalid,
    not_supported,
    required,
)

# (JSON key, name Kubernetes prints in the "more than 1 volume type" error), in validateVolumeSource's order.
_SOURCES = (
    ("emptyDir", "emptyDir"), ("hostPath", "hostPath"), ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"), ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"), ("nfs", "nfs"), ("iscsi", "iscsi"), ("glusterfs", "glusterfs"), ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"), ("rbd", "rbd"), ("cinder", "cinder"),
    ("cephfs", "cephFS"), ("quobyte", "quobyte"), ("downwardAPI", "downwarAPI"), ("fc", "fc"),
    ("flexVolume", "flexVolume"), ("configMap", "configMap"), ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"), ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"), ("azureDisk", "azureDisk"), ("storageos", "storageos"),
    ("projected", "projected"), ("scaleIO", "scaleIO"), ("csi", "csi"), ("ephemeral", "ephemeral"),
    ("image", "image"),
)
HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate",
                   "Socket")
FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"


def validate_volumes(volumes: Any, path: str) -> tuple[dict[str, dict[str, Any]], Errors]:
    """The valid volumes by name, and the errors of the others."""
    errs: Errors = []
    valid: dict[str, dict[str, Any]] = {}
    for i, volume in enumerate(as_list(volumes)):
        volume = as_dict(volume)
        vpath = index(path, i)
        name = as_str(volume.get("name"))
        errors = _source(volume, vpath)
        if not name:
            errors.append(required(child(vpath, "name")))
        else:
            errors.extend(invalid(child(vpath, "name"), name, m) for m in formats.is_dns1123_label(name))
        if name in valid:
            errors.append(duplicate(child(vpath, "name"), name))
        if errors:
            errs.extend(errors)
        else:
            valid[name] = volume
    return valid, errs


def _source(volume: dict[str, Any], path: str) -> Errors:
    errs: Errors = []
    count = 0
    for key, shown in _SOURCES:
        if volume.get(key) is None:
            continue
        if count:
            errs.append(forbidden(child(path, shown), "may not specify more than 1 volume type"))
            continue
        count += 1
        check = _CHECKS.get(key)
        if check is not None:
            errs.extend(check(as_dict(volume[key]), child(path, key)))
    if not count:
        errs.append(required(path, "must specify a volume type"))
    return errs


def _empty_dir(src: dict[str, Any], path: str) -> Errors:
    limit = src.get("sizeLimit")
    if limit is not None and (quantities.parse(limit) or 0) < 0:
        return [forbidden(child(path, "sizeLimit"), "SizeLimit field must be a valid resource quantity")]
    return []


def _host_path(src: dict[str, Any], path: str) -> Errors:
    host_path = as_str(src.get("path"))
    if not host_path:
        return [required(child(path, "path"))]
    errs = no_backsteps(host_path, child(path, "path"))
    kind = src.get("type")
    if kind is not None and kind not in HOST_PATH_TYPES:
        errs.append(not_supported(child(path, "type"), kind, HOST_PATH_TYPES))
    return errs


def _file_mode(value: Any, path: str) -> Errors:
    mode = as_int(value)
    if mode is not None and not 0 <= mode <= 0o777:
        return [invalid(path, mode, FILE_MODE_ERROR)]
    return []


def _items(items: Any, path: str) -> Errors:
    errs: Errors = []
    for i, item in enumerate(as_list(items)):
        item, ipath = as_dict(item), index(path, i)
        if not as_str(item.get("key")):
            errs.append(required(child(ipath, "key")))
        target = as_str(item.get("path"))
        if not target:
            errs.append(required(child(ipath, "path")))
        errs.extend(local_non_reserved_path(target, child(ipath, "path")))
        errs.extend(_file_mode(item.get("mode"), child(ipath, "mode")))
    return errs


def _config_map(src: dict[str, Any], path: str) -> Errors:
    errs = [] if as_str(src.get("name")) else [required(child(path, "name"))]
    errs.extend(_file_mode(src.get("defaultMode"), child(path, "defaultMode")))
    return errs + _items(src.get("items"), child(path, "items"))


def _secret(src: dict[str, Any], path: str) -> Errors:
    errs = [] if as_str(src.get("secretName")) else [required(child(path, "secretName"))]
    errs.extend(_file_mode(src.get("defaultMode"), child(path, "defaultMode")))
    return errs + _items(src.get("items"), child(path, "items"))


def _pvc(src: dict[str, Any], path: str) -> Errors:
    return [] if as_str(src.get("claimName")) else [required(child(path, "claimName"))]


def _nfs(src: dict[str, Any], path: str) -> Errors:
    errs = [] if as_str(src.get("server")) else [required(child(path, "server"))]
    nfs_path = as_str(src.get("path"))
    if not nfs_path:
        errs.append(required(child(path, "path")))
    elif not nfs_path.startswith("/"):
        errs.append(invalid(child(path, "path"), nfs_path, "must be an absolute path"))
    return errs


def _downward_api(src: dict[str, Any], path: str) -> Errors:
    errs = _file_mode(src.get("defaultMode"), child(path, "defaultMode"))
    for i, item in enumerate(as_list(src.get("items"))):
        item, ipath = as_dict(item), index(child(path, "items"), i)
        target = as_str(item.get("path"))
        if not target:
            errs.append(required(child(ipath, "path")))
        errs.extend(local_non_reserved_path(target, child(ipath, "path")))
        errs.extend(_file_mode(item.get("mode"), child(ipath, "mode")))
    return errs


def _projected(src: dict[str, Any], path: str) -> Errors:
    errs = _file_mode(src.get("defaultMode"), child(path, "defaultMode"))
    for i, source in enumerate(as_list(src.get("sources"))):
        source, spath = as_dict(source), index(child(path, "sources"), i)
        if isinstance(source.get("secret"), dict):
            errs.extend(_items(source["secret"].get("items"), child(spath, "secret", "items")))
        if isinstance(source.get("configMap"), dict):
            errs.extend(_items(source["configMap"].get("items"), child(spath, "configMap", "items")))
        token = source.get("serviceAccountToken")
        if isinstance(token, dict):
            expiry = as_int(token.get("expirationSeconds"))
            if expiry is not None and expiry < 600:
                errs.append(invalid(child(spath, "serviceAccountToken", "expirationSeconds"), expiry,
                                    "may not specify a duration less than 10 minutes"))
            if not as_str(token.get("path")):
                errs.append(required(child(spath, "serviceAccountToken", "path")))
    return errs


def _csi(src: dict[str, Any], path: str) -> Errors:
    return [] if as_str(src.get("driver")) else [required(child(path, "driver"))]


def _ephemeral(src: dict[str, Any], path: str) -> Errors:
    if src.get("volumeClaimTemplate") is None:
        return [required(child(path, "volumeClaimTemplate"))]
    return []


_CHECKS = {
    "emptyDir": _empty_dir, "hostPath": _host_path, "configMap": _config_map, "secret": _secret,
    "persistentVolumeClaim": _pvc, "nfs": _nfs, "downwardAPI": _downward_api, "projected": _projected,
    "csi": _csi, "ephemeral": _ephemeral,
}


def no_backsteps(target: str, path: str) -> Errors:
    if ".." in target.split("/"):
        return [invalid(path, target, "must not contain '..'")]
    return []


def local_descending_path(target: str, path: str) -> Errors:
    errs = [invalid(path, target, "must be a relative path")] if posixpath.isabs(target) else []
    return errs + no_backsteps(target, path)


def local_non_reserved_path(target: str, path: str) -> Errors:
    errs = local_descending_path(target, path)
    if target.startswith("..") and not target.startswith("../"):
        errs.append(invalid(path, target, "must not start with '..'"))
    return errs
