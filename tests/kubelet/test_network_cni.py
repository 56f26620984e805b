"""The CNI process protocol against fake plugins (no root): environment, stdin, chaining, errors, results;
plus the per-Pod record store and the per-key lock the network package builds on."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from nanokube.kubelet.network import cni
from nanokube.kubelet.network.base import KeyedLock, NetworkError
from nanokube.kubelet.network.records import RecordStore

# A plugin that logs what it was given and answers as its config's "reply" says.
FAKE_PLUGIN = f"""#!{sys.executable}
import json, os, sys
conf = json.load(sys.stdin)
me = os.path.basename(sys.argv[0])
env = {{k: v for k, v in os.environ.items() if k.startswith("CNI_")}}
with open(os.environ["FAKE_CNI_LOG"], "a") as f:
    f.write(json.dumps({{"plugin": me, "env": env, "conf": conf}}) + "\\n")
reply = conf.get("reply", {{}})
if "error" in reply:
    print(json.dumps(reply["error"])); sys.exit(1)
if "stderr" in reply:
    sys.stderr.write(reply["stderr"]); sys.exit(2)
if env["CNI_COMMAND"] == "ADD":
    prev = conf.get("prevResult") or {{"cniVersion": conf["cniVersion"], "ips": []}}
    prev = dict(prev, seen=prev.get("seen", []) + [me])
    print(json.dumps(prev))
"""

RESULT: dict[str, Any] = {
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "nk0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/run/netns/x"}],
    "ips": [{"interface": 2, "address": "fd00::5/64", "gateway": "fd00::1"},
            {"interface": 2, "address": "10.244.7.5/24", "gateway": "10.244.7.1"}],
}


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("fakea", "fakeb"):
        plugin = bin_dir / name
        plugin.write_text(FAKE_PLUGIN)
        plugin.chmod(0o755)
    monkeypatch.setenv("FAKE_CNI_LOG", str(tmp_path / "calls.log"))
    return bin_dir


def calls(plugins: Path) -> list[dict[str, Any]]:
    log = plugins.parent / "calls.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def chain(plugins: Path, *confs: dict[str, Any]) -> cni.NetworkList:
    return cni.NetworkList("testnet", [dict(c) for c in confs], plugin_dirs=(str(plugins.parent / "none"),
                                                                             str(plugins)))


ATTACH = cni.Attachment("ctr1", "/run/netns/x", "eth0", cni.kubernetes_args("ns1", "web", "uid-1", "sb-1"))


async def test_add_runs_the_chain_in_order_with_prev_results_and_cni_environment(plugins: Path) -> None:
    net = chain(plugins, {"type": "fakea", "bridge": "nk9"}, {"type": "fakeb"})
    result = await net.add(ATTACH)
    assert result["seen"] == ["fakea", "fakeb"]
    first, second = calls(plugins)
    assert first["plugin"] == "fakea" and second["plugin"] == "fakeb"
    assert first["conf"] == {"type": "fakea", "bridge": "nk9", "name": "testnet", "cniVersion": "1.0.0"}
    assert second["conf"]["prevResult"]["seen"] == ["fakea"]
    env = first["env"]
    assert env["CNI_COMMAND"] == "ADD" and env["CNI_CONTAINERID"] == "ctr1"
    assert env["CNI_NETNS"] == "/run/netns/x" and env["CNI_IFNAME"] == "eth0"
    assert env["CNI_PATH"].split(os.pathsep)[-1] == str(plugins)
    assert env["CNI_ARGS"] == ("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web;"
                               "K8S_POD_INFRA_CONTAINER_ID=sb-1;K8S_POD_UID=uid-1")


async def test_del_runs_in_reverse_and_check_in_order_with_the_add_result(plugins: Path) -> None:
    net = chain(plugins, {"type": "fakea"}, {"type": "fakeb"})
    await net.delete(ATTACH, RESULT)
    await net.check(ATTACH, RESULT)
    got = [(c["plugin"], c["env"]["CNI_COMMAND"], c["conf"].get("prevResult")) for c in calls(plugins)]
    assert got == [("fakeb", "DEL", RESULT), ("fakea", "DEL", RESULT),
                   ("fakea", "CHECK", RESULT), ("fakeb", "CHECK", RESULT)]


async def test_plugin_json_error_becomes_cni_error(plugins: Path) -> None:
    error = {"cniVersion": "1.0.0", "code": 11, "msg": "busy", "details": "try later"}
    net = chain(plugins, {"type": "fakea", "reply": {"error": error}})
    with pytest.raises(cni.CNIError) as info:
        await net.add(ATTACH)
    assert (info.value.code, info.value.msg, info.value.details) == (cni.TRY_AGAIN_LATER, "busy", "try later")
    assert "fakea" in str(info.value) and "busy" in str(info.value)
    assert isinstance(info.value, NetworkError)
    assert info.value.reason == "FailedCreatePodSandBox"


async def test_plugin_stderr_failure_becomes_cni_error(plugins: Path) -> None:
    net = chain(plugins, {"type": "fakea", "reply": {"stderr": "plugin exploded"}})
    with pytest.raises(cni.CNIError, match="plugin exploded") as info:
        await net.delete(ATTACH)
    assert info.value.code == 999


async def test_missing_plugin_names_the_package(plugins: Path) -> None:
    with pytest.raises(NetworkError, match="containernetworking-plugins"):
        await chain(plugins, {"type": "nosuch"}).add(ATTACH)
    with pytest.raises(NetworkError, match="invalid"):
        cni.find_plugin("../fakea", [str(plugins)])


def test_conf_and_conflist_round_trip() -> None:
    single = cni.NetworkList.from_dict({"cniVersion": "0.4.0", "name": "n", "type": "bridge", "bridge": "b"})
    assert single.plugins == [{"type": "bridge", "bridge": "b"}] and single.cni_version == "0.4.0"
    listed = cni.NetworkList.from_dict(single.to_dict())
    assert listed.to_dict() == single.to_dict()
    assert listed.plugin_config(0, {"x": 1}) == {"type": "bridge", "bridge": "b", "name": "n",
                                                 "cniVersion": "0.4.0", "prevResult": {"x": 1}}


def test_pod_address_prefers_ipv4_on_the_pod_interface() -> None:
    address = cni.pod_address(RESULT, "eth0")
    assert (address.ip, address.prefix_len, address.gateway, address.interface) == \
        ("10.244.7.5", 24, "10.244.7.1", "eth0")
    only_v6 = dict(RESULT, ips=RESULT["ips"][:1])
    assert cni.pod_address(only_v6, "eth0").ip == "fd00::5"
    with pytest.raises(NetworkError):
        cni.pod_address({"ips": []}, "eth0")


async def test_record_store_round_trip_and_cleanup(tmp_path: Path) -> None:
    store = RecordStore(str(tmp_path / "records"))
    assert await store.all() == {}
    await store.write("uid-1", {"ip": "10.0.0.2"})
    await store.write("uid-2", {"ip": "10.0.0.3"})
    (tmp_path / "records" / "uid-3.json").write_text("{not json")
    (tmp_path / "records" / "uid-4.json.tmp.123").write_text("{}")
    assert await store.read("uid-1") == {"ip": "10.0.0.2"}
    assert await store.all() == {"uid-1": {"ip": "10.0.0.2"}, "uid-2": {"ip": "10.0.0.3"}, "uid-3": {}}
    assert not (tmp_path / "records" / "uid-4.json.tmp.123").exists()
    await store.remove("uid-1")
    await store.remove("uid-1")
    assert await store.read("uid-1") is None
    with pytest.raises(NetworkError):
        store.path("../escape")


async def test_keyed_lock_serialises_one_key_and_forgets_it() -> None:
    locks = KeyedLock()
    order: list[str] = []

    async def hold(key: str, tag: str, pause: asyncio.Event | None) -> None:
        async with locks.hold(key):
            order.append(f"{tag}+")
            if pause is not None:
                await pause.wait()
            order.append(f"{tag}-")

    gate = asyncio.Event()
    first = asyncio.create_task(hold("a", "a1", gate))
    await asyncio.sleep(0)
    second = asyncio.create_task(hold("a", "a2", None))
    other = asyncio.create_task(hold("b", "b1", None))
    await other  # another key is not blocked by "a"
    assert order == ["a1+", "b1+", "b1-"]
    gate.set()
    await asyncio.gather(first, second)
    assert order[3:] == ["a1-", "a2+", "a2-"]
    assert len(locks) == 0
