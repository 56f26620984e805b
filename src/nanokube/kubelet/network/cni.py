"""Call CNI plugin binaries the way libcni does: environment in, JSON config on stdin, JSON result on stdout.

The CNI spec (1.0.0) is a process protocol, so this module is one: ``invoke`` runs one plugin for one command
(ADD, DEL, CHECK, VERSION) with the ``CNI_*`` variables set, and turns a non-zero exit into ``CNIError``
carrying the plugin's own error ``code``/``msg``/``details``. ``NetworkList`` is a configuration list (a
``.conflist``): ADD runs its plugins in order, each seeing the previous one's result as ``prevResult``;
DEL runs them in reverse; CHECK runs them in order against the result of the ADD. Callers keep that result
(libcni caches it on disk; ``PodNetwork`` keeps it in its per-Pod record) and pass it back to DEL and CHECK.

Nothing here knows about Pods, bridges or IPAM: those are plugin configurations built by ``podnet``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .base import NetworkError
from .command import run

JSONDict = dict[str, Any]

SPEC_VERSION = "1.0.0"
DEFAULT_PLUGIN_DIRS: tuple[str, ...] = ("/usr/lib/cni", "/opt/cni/bin")
ADD, DEL, CHECK, VERSION = "ADD", "DEL", "CHECK", "VERSION"
TRY_AGAIN_LATER = 11  # a spec'd error code: the runtime should retry


class CNIError(NetworkError):
    """A plugin failed: ``code`` and ``msg`` are what it printed (code 999 is a generic plugin failure)."""

    def __init__(self, plugin: str, command: str, code: int, msg: str, details: str = "") -> None:
        text = f"plugin type={plugin!r} failed ({command}): {msg}"
        if details:
            text += f": {details}"
        super().__init__(text)
        self.plugin = plugin
        self.command = command
        self.code = code
        self.msg = msg
        self.details = details


@dataclass(frozen=True)
class Attachment:
    """Who a call is for: the ``CNI_CONTAINERID``, ``CNI_NETNS``, ``CNI_IFNAME`` and ``CNI_ARGS`` of it."""

    container_id: str
    netns: str
    ifname: str = "eth0"
    args: tuple[tuple[str, str], ...] = ()

    def environ(self, command: str, plugin_dirs: Sequence[str]) -> dict[str, str]:
        env = dict(os.environ)  # plugins run iptables & co. and need PATH
        env.update(CNI_COMMAND=command, CNI_CONTAINERID=self.container_id, CNI_NETNS=self.netns,
                   CNI_IFNAME=self.ifname, CNI_PATH=os.pathsep.join(plugin_dirs),
                   CNI_ARGS=";".join(f"{k}={v}" for k, v in self.args))
        return env


def kubernetes_args(pod_namespace: str, pod_name: str, pod_uid: str, sandbox_id: str) -> tuple[tuple[str, str], ...]:
    """The ``CNI_ARGS`` a kubelet passes; ``IgnoreUnknown`` keeps plugins that don't know them from failing."""
    return (("IgnoreUnknown", "1"), ("K8S_POD_NAMESPACE", pod_namespace), ("K8S_POD_NAME", pod_name),
            ("K8S_POD_INFRA_CONTAINER_ID", sandbox_id), ("K8S_POD_UID", pod_uid))


def find_plugin(plugin_type: str, plugin_dirs: Sequence[str]) -> str:
    """The executable for ``plugin_type`` in the first dir that has it; ``NetworkError`` if none does."""
    if not plugin_type or "/" in plugin_type:
        raise NetworkError(f"invalid CNI plugin type {plugin_type!r}")
    for directory in plugin_dirs:
        path = os.path.join(directory, plugin_type)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise NetworkError(f"failed to find plugin {plugin_type!r} in path {list(plugin_dirs)} "
                       "(install the Debian package containernetworking-plugins)")


def _plugin_error(plugin: str, command: str, returncode: int, stdout: bytes, stderr: bytes) -> CNIError:
    try:
        body = json.loads(stdout)
    except ValueError:
        body = None
    if isinstance(body, dict) and "msg" in body:
        return CNIError(plugin, command, int(body.get("code") or 999), str(body["msg"]), str(body.get("details", "")))
    said = (stderr or stdout).decode(errors="replace").strip() or f"exit status {returncode}"
    return CNIError(plugin, command, 999, said)


async def invoke(netconf: JSONDict, command: str, attachment: Attachment, *,
                 plugin_dirs: Sequence[str] = DEFAULT_PLUGIN_DIRS, timeout: float = 60.0) -> JSONDict | None:
    """Run the plugin named by ``netconf["type"]``; returns the parsed result (ADD, VERSION) or None."""
    plugin = str(netconf.get("type", ""))
    path = find_plugin(plugin, plugin_dirs)
    try:
        result = await run([path], stdin=json.dumps(netconf).encode(),
                           env=attachment.environ(command, plugin_dirs), timeout=timeout)
    except TimeoutError as e:
        raise CNIError(plugin, command, 999, f"timed out after {timeout:g}s") from e
    if not result.ok:
        raise _plugin_error(plugin, command, result.returncode, result.stdout, result.stderr)
    if not result.stdout.strip():
        return None
    try:
        parsed = json.loads(result.stdout)
    except ValueError as e:
        raise CNIError(plugin, command, 999, f"unparsable result: {result.stdout[:200]!r}") from e
    if not isinstance(parsed, dict):
        raise CNIError(plugin, command, 999, f"result is not an object: {result.stdout[:200]!r}")
    return parsed


@dataclass
class NetworkList:
    """A CNI network configuration list: a name, a spec version and a chain of plugin configurations."""

    name: str
    plugins: list[JSONDict]
    cni_version: str = SPEC_VERSION
    plugin_dirs: tuple[str, ...] = DEFAULT_PLUGIN_DIRS
    timeout: float = 60.0
    extra: JSONDict = field(default_factory=dict)  # other top-level keys, kept for to_dict

    @classmethod
    def from_dict(cls, data: JSONDict, *, plugin_dirs: Sequence[str] = DEFAULT_PLUGIN_DIRS) -> NetworkList:
        """A ``.conflist`` document, or a single-plugin ``.conf`` one (a list of one)."""
        if "plugins" in data:
            plugins = [dict(p) for p in data["plugins"]]
        else:
            plugins = [{k: v for k, v in data.items() if k not in ("name", "cniVersion")}]
        extra = {k: v for k, v in data.items() if k not in ("name", "cniVersion", "plugins")} \
            if "plugins" in data else {}
        return cls(str(data["name"]), plugins, str(data.get("cniVersion", SPEC_VERSION)), tuple(plugin_dirs),
                   extra=extra)

    def to_dict(self) -> JSONDict:
        return {"cniVersion": self.cni_version, "name": self.name, **self.extra,
                "plugins": [dict(p) for p in self.plugins]}

    def plugin_config(self, index: int, prev_result: JSONDict | None) -> JSONDict:
        """What plugin ``index`` reads on stdin: its own keys plus the list's name and version."""
        conf = dict(self.plugins[index])
        conf["name"] = self.name
        conf["cniVersion"] = self.cni_version
        if prev_result is not None:
            conf["prevResult"] = prev_result
        return conf

    async def _call(self, index: int, command: str, attachment: Attachment,
                    prev_result: JSONDict | None) -> JSONDict | None:
        return await invoke(self.plugin_config(index, prev_result), command, attachment,
                            plugin_dirs=self.plugin_dirs, timeout=self.timeout)

    async def add(self, attachment: Attachment) -> JSONDict:
        """ADD through the chain; returns the last plugin's result (what DEL and CHECK need back)."""
        result: JSONDict | None = None
        for index in range(len(self.plugins)):
            result = await self._call(index, ADD, attachment, result) or result
        if result is None:
            raise NetworkError(f"network {self.name!r}: no plugin returned a result")
        return result

    async def delete(self, attachment: Attachment, prev_result: JSONDict | None = None) -> None:
        """DEL in reverse order. Plugins treat a missing interface or namespace as already deleted."""
        for index in reversed(range(len(self.plugins))):
            await self._call(index, DEL, attachment, prev_result)

    async def check(self, attachment: Attachment, prev_result: JSONDict) -> None:
        """CHECK in order; a plugin that finds the attachment changed raises ``CNIError``."""
        for index in range(len(self.plugins)):
            await self._call(index, CHECK, attachment, prev_result)

    async def versions(self) -> dict[str, list[str]]:
        """Each plugin type's supported spec versions (the VERSION command), to test an install."""
        found: dict[str, list[str]] = {}
        for plugin in self.plugins:
            conf = {"cniVersion": self.cni_version, "type": plugin.get("type", "")}
            reply = await invoke(conf, VERSION, Attachment("", ""), plugin_dirs=self.plugin_dirs,
                                 timeout=self.timeout)
            found[str(conf["type"])] = list((reply or {}).get("supportedVersions", []))
        return found


@dataclass(frozen=True)
class ResultAddress:
    ip: str
    prefix_len: int
    gateway: str
    interface: str  # the name of the interface the address is on, "" if the result does not say


def addresses(result: JSONDict) -> list[ResultAddress]:
    """The ``ips`` of a 1.0.0 (or 0.3/0.4) result, with their interface names resolved."""
    interfaces = result.get("interfaces") or []
    found: list[ResultAddress] = []
    for entry in result.get("ips") or []:
        ip, _, prefix = str(entry.get("address", "")).partition("/")
        index = entry.get("interface")
        name = ""
        if isinstance(index, int) and 0 <= index < len(interfaces):
            name = str(interfaces[index].get("name", ""))
        found.append(ResultAddress(ip, int(prefix or 0), str(entry.get("gateway", "")), name))
    return found


def pod_address(result: JSONDict, ifname: str) -> ResultAddress:
    """The Pod's IPv4 address on ``ifname`` (else its first address); ``NetworkError`` if there is none."""
    found = addresses(result)
    for wanted in (lambda a: a.interface == ifname and ":" not in a.ip, lambda a: ":" not in a.ip,
                   lambda a: True):
        for address in found:
            if address.ip and wanted(address):
                return address
    raise NetworkError(f"CNI result has no IP address: {json.dumps(result)[:300]}")
