"""Pod networking for the native runtime: a network namespace per Pod, wired by the CNI bridge + host-local.

``PodNetwork`` gives each Pod a named namespace (``/run/netns/<prefix><pod uid>``, ``lo`` up) and runs the
CNI ``bridge`` plugin with ``host-local`` IPAM on the node's pod CIDR: a veth pair from the namespace's
``eth0`` to the node bridge (``nk0``), hairpin on so a Pod can reach itself through a Service, the bridge as
default gateway (the CIDR's first address). Traffic that leaves the pod CIDR is masqueraded by node-wide rules
made at ``start`` (``bridge.ensure_masquerade``), not per Pod by the plugin's ``ipMasq``, so a Pod's setup and
teardown run no iptables (Pods set up by older versions, whose records say ``ipMasq``, still tear down their
own rules). host-local
keeps its reservations under ``<state_dir>/cni/ipam`` and hands addresses out after the last one it reserved,
so a replacement Pod gets a new IP rather than its predecessor's.

Each Pod has a record (``records.RecordStore`` under ``<state_dir>/cni/pods``) written before the ADD and
completed after it, holding the exact network configuration and the ADD result. That is what makes teardown
right after a restart or a CIDR change (DEL gets the same config and ``prevResult`` the ADD had), and what lets
``recover`` tell a finished sandbox from one a crash interrupted (those are torn down). Every operation on
one Pod holds that Pod's lock; different Pods proceed concurrently (host-local serialises its own files).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from dataclasses import dataclass
from typing import Any

from . import bridge, ipmasq, netns
from .base import KeyedLock, NetworkError, PodNetworkInfo
from .cni import (
    DEFAULT_PLUGIN_DIRS,
    Attachment,
    NetworkList,
    addresses,
    find_plugin,
    kubernetes_args,
    pod_address,
)
from .records import RecordStore

log = logging.getLogger(__name__)
_POD_UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class PodNetworkConfig:
    pod_cidr: str  # the node's spec.podCIDR, e.g. 10.42.0.0/24
    state_dir: str  # the node's state dir; IPAM and records go under <state_dir>/cni
    bridge: str = "nk0"
    network_name: str = "nanokube"  # the CNI network name (host-local keeps <ipam dir>/<name>/)
    netns_prefix: str = "nk-"  # Pod namespaces are /run/netns/<prefix><pod uid>
    ifname: str = "eth0"
    ip_masq: bool = True  # masquerade what Pods send outside the pod CIDR (node-wide rules, see masquerade())
    hairpin: bool = True
    mtu: int = 0  # 0: the plugin's default (1500)
    plugin_dirs: tuple[str, ...] = DEFAULT_PLUGIN_DIRS
    timeout: float = 60.0  # per plugin call

    @property
    def ipam_dir(self) -> str:
        return os.path.join(self.state_dir, "cni", "ipam")

    @property
    def records_dir(self) -> str:
        return os.path.join(self.state_dir, "cni", "pods")


def bridge_network(config: PodNetworkConfig) -> NetworkList:
    """The CNI configuration list for ``config``: one ``bridge`` plugin with ``host-local`` IPAM."""
    gateway, _ = bridge.gateway_of(config.pod_cidr)
    default_route = "::/0" if ":" in gateway else "0.0.0.0/0"
    plugin: dict[str, Any] = {
        "type": "bridge", "bridge": config.bridge, "isGateway": True, "ipMasq": False,  # see masquerade()
        "hairpinMode": config.hairpin,
        "ipam": {"type": "host-local", "dataDir": config.ipam_dir,
                 "ranges": [[{"subnet": config.pod_cidr, "gateway": gateway}]],
                 "routes": [{"dst": default_route}]},
    }
    if config.mtu:
        plugin["mtu"] = config.mtu
    return NetworkList(config.network_name, [plugin], plugin_dirs=config.plugin_dirs, timeout=config.timeout)


def _info(uid: str, record: dict[str, Any], ifname: str) -> PodNetworkInfo:
    address = pod_address(record["result"], ifname)
    return PodNetworkInfo(uid, str(record.get("namespace", "")), str(record.get("name", "")),
                          str(record["netns"]), address.ip, address.gateway, address.prefix_len, ifname)


class PodNetwork:
    """The native runtime's Pod networks on one node (see the module docstring)."""

    def __init__(self, config: PodNetworkConfig) -> None:
        self.config = dataclasses.replace(config)  # our own copy: update_pod_cidr changes it
        self.network = bridge_network(config)
        self.gateway, self.prefix_len = bridge.gateway_of(config.pod_cidr)
        self._records = RecordStore(config.records_dir)
        self._pods: dict[str, PodNetworkInfo] = {}
        self._locks = KeyedLock()

    def netns_name(self, pod_uid: str) -> str:
        return f"{self.config.netns_prefix}{pod_uid}"

    def get(self, pod_uid: str) -> PodNetworkInfo | None:
        return self._pods.get(pod_uid)

    def pods(self) -> list[PodNetworkInfo]:
        """The Pods set up or recovered by this object."""
        return list(self._pods.values())

    # -- node side ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the plugins are installed, make the state dirs and the bridge. Raises ``NetworkError``."""
        for plugin in ("bridge", "host-local"):
            find_plugin(plugin, self.config.plugin_dirs)
        os.makedirs(self.config.ipam_dir, mode=0o700, exist_ok=True)
        os.makedirs(self.config.records_dir, mode=0o700, exist_ok=True)
        await netns.prepare(f"{self.config.netns_prefix}probe-{os.getpid()}", timeout=self.config.timeout)
        await bridge.ensure(self.config.bridge, self.config.pod_cidr, mtu=self.config.mtu)
        await self.masquerade()

    async def masquerade(self) -> None:
        """Masquerade traffic leaving the pod CIDR (``ip_masq``), once for the node rather than per Pod."""
        if self.config.ip_masq:
            await bridge.ensure_masquerade(self.config.bridge, self.config.pod_cidr,
                                           f'name: "{self.config.network_name}" nanokube pod masquerade')

    async def update_pod_cidr(self, pod_cidr: str) -> None:
        """The node's pod CIDR changed (or became known): new Pods get addresses from it and the bridge is
        re-addressed. Existing Pods keep theirs until torn down (their records hold their own config)."""
        if pod_cidr == self.config.pod_cidr:
            return
        gateway = bridge.gateway_of(pod_cidr)
        self.config.pod_cidr = pod_cidr
        self.network = bridge_network(self.config)
        self.gateway, self.prefix_len = gateway
        await bridge.ensure(self.config.bridge, pod_cidr, mtu=self.config.mtu)
        await self.masquerade()

    async def shutdown(self, *, remove_bridge: bool = False) -> None:
        """Pods keep their networks (a restarted agent recovers them); the bridge goes only if asked. With no
        Pod left, the masquerade rules go too (``start`` makes them again), so a node stopped empty leaves
        only its bridge on the host."""
        if remove_bridge:
            await bridge.delete(self.config.bridge)
        elif self.config.ip_masq and not await self._records.all():
            await bridge.delete_masquerade(self.config.bridge)

    # -- Pods -----------------------------------------------------------------------------------------------

    async def setup(self, pod_uid: str, pod_namespace: str, pod_name: str) -> PodNetworkInfo:
        """Namespace + veth + IP for the Pod; a second call returns the first's result. ``NetworkError``
        on failure, after undoing what was done (so a retry starts clean)."""
        async with self._locks.hold(pod_uid):
            known = await self._existing(pod_uid)
            if known is not None:
                return known
            name = self.netns_name(pod_uid)
            record: dict[str, Any] = {"namespace": pod_namespace, "name": pod_name, "netnsName": name,
                                      "netns": netns.path(name), "ifname": self.config.ifname,
                                      "network": self.network.to_dict(), "result": None}
            await self._records.write(pod_uid, record)  # first, so a crash from here on gets cleaned up
            try:
                await netns.create(name, timeout=self.config.timeout)
                record["result"] = await self.network.add(self._attachment(pod_uid, record))
                info = _info(pod_uid, record, self.config.ifname)
                await self._records.write(pod_uid, record)
            except BaseException as e:
                await self._undo(pod_uid, record, e)
                if isinstance(e, NetworkError | OSError):
                    raise NetworkError(f"setting up the network of pod {pod_namespace}/{pod_name}: {e}") from e
                raise
            self._pods[pod_uid] = info
            log.info("pod %s/%s: network %s ip %s", pod_namespace, pod_name, name, info.ip)
            return info

    async def teardown(self, pod_uid: str) -> None:
        """Release the IP (host-local), remove the veth and masquerade rules (bridge DEL), the namespace and
        the record. Idempotent; ``NetworkError`` if a step fails (the record stays, so a retry can finish)."""
        async with self._locks.hold(pod_uid):
            record = await self._records.read(pod_uid)
            await self._release(pod_uid, record)
            self._pods.pop(pod_uid, None)

    async def check(self, pod_uid: str) -> None:
        """CNI CHECK of the Pod's attachment: raises ``NetworkError`` if the namespace, veth or IP are gone."""
        async with self._locks.hold(pod_uid):
            record = await self._records.read(pod_uid)
            if not record or not record.get("result"):
                raise NetworkError(f"pod {pod_uid} has no network")
            if not netns.is_mounted(str(record["netns"])):
                raise NetworkError(f"network namespace {record['netns']} of pod {pod_uid} is gone")
            network = self._network_of(record)
            await network.check(self._attachment(pod_uid, record), record["result"])

    async def recover(self) -> list[PodNetworkInfo]:
        """After a restart: adopt every Pod whose record is complete and whose namespace lives; tear down
        half-made ones and namespaces with our prefix that have no record. Returns the adopted Pods."""
        records = await self._records.all()
        live = set(netns.list_names(self.config.netns_prefix))
        adopted: list[PodNetworkInfo] = []
        for uid, record in records.items():
            name = str(record.get("netnsName", ""))
            if record.get("result") and name in live:
                live.discard(name)
                try:
                    info = _info(uid, record, str(record.get("ifname") or self.config.ifname))
                except (NetworkError, KeyError, TypeError, ValueError):
                    log.warning("pod %s: unreadable network record, tearing it down", uid)
                else:
                    self._pods[uid] = info
                    adopted.append(info)
                    continue
            live.discard(name)
            await self._forget(uid)
        for name in sorted(live):  # a namespace created by a setup that crashed before its record was written
            uid = name[len(self.config.netns_prefix):]
            if _POD_UID.fullmatch(uid):  # only Pod namespaces: another user of the prefix keeps its own
                await self._forget(uid)
        return adopted

    # -- helpers --------------------------------------------------------------------------------------------

    async def _existing(self, pod_uid: str) -> PodNetworkInfo | None:
        known = self._pods.get(pod_uid)
        if known is not None and netns.is_mounted(known.netns_path):
            return known
        record = await self._records.read(pod_uid)
        if record and record.get("result") and netns.is_mounted(str(record["netns"])):
            info = _info(pod_uid, record, self.config.ifname)
            self._pods[pod_uid] = info
            return info
        if record is not None:  # half-made or its namespace vanished: start over
            await self._release(pod_uid, record)
        self._pods.pop(pod_uid, None)
        return None

    async def _forget(self, pod_uid: str) -> None:
        try:
            async with self._locks.hold(pod_uid):
                await self._release(pod_uid, await self._records.read(pod_uid))
        except NetworkError as e:
            log.warning("pod %s: cleaning up a stale network failed: %s", pod_uid, e)

    def _network_of(self, record: dict[str, Any] | None) -> NetworkList:
        if record and isinstance(record.get("network"), dict):
            return NetworkList.from_dict(record["network"], plugin_dirs=self.config.plugin_dirs)
        return self.network

    def _attachment(self, pod_uid: str, record: dict[str, Any]) -> Attachment:
        ns_path = str(record.get("netns") or netns.path(self.netns_name(pod_uid)))
        args = kubernetes_args(str(record.get("namespace", "")), str(record.get("name", "")), pod_uid, pod_uid)
        return Attachment(pod_uid, ns_path if netns.is_mounted(ns_path) else "",
                          str(record.get("ifname") or self.config.ifname), args)

    async def _release(self, pod_uid: str, record: dict[str, Any] | None) -> None:
        record = record or {}
        name = str(record.get("netnsName") or self.netns_name(pod_uid))
        # DEL before deleting the namespace: the plugin reads the Pod's addresses from inside it to remove
        # the masquerade rules; without a namespace it can only release the IP.
        network = self._network_of(record)
        attachment = self._attachment(pod_uid, record)
        await network.delete(attachment, record.get("result"))
        if not attachment.netns and record.get("result") and any(p.get("ipMasq") for p in network.plugins):
            ips = [a.ip for a in addresses(record["result"])]
            await ipmasq.teardown(network.name, pod_uid, ips, timeout=self.config.timeout)
        await netns.delete(name, timeout=self.config.timeout)
        await self._records.remove(pod_uid)

    async def _undo(self, pod_uid: str, record: dict[str, Any], cause: BaseException) -> None:
        try:
            await self._release(pod_uid, record)
        except Exception as e:  # keep the original failure; the record stays for recover() to retry
            log.warning("pod %s: undoing a failed network setup (%s) failed too: %s", pod_uid, cause, e)
        self._pods.pop(pod_uid, None)
