"""Printers for the smaller groups: coordination (Lease), discovery (EndpointSlice), policy
(PodDisruptionBudget), rbac (RoleBinding, ClusterRoleBinding) and scheduling (PriorityClass).

Role, ClusterRole and the other built-ins Kubernetes gives no printer fall back to the API server's default
convertor (``Name``, ``Created At``), which lives in ``__init__``. EndpointSlice lists at most three ports and
three addresses then ``+ N more...``, and ``<unset>`` for none; binding subjects print as ``ns/name`` for
service accounts and plain names for users and groups, joined with ", ".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nanokube.api.tables.common import (
    AGE,
    JSON,
    NAME,
    Column,
    Context,
    Printer,
    age,
    dig,
    int_or_string,
    items,
    more_list,
    name_of,
    number,
    text,
    wide,
)

_LIMIT = 3


LEASE = Printer((
    NAME, Column("Holder", doc=("io.k8s.api.coordination.v1.LeaseSpec", "holderIdentity")), AGE,
), lambda obj, ctx: [name_of(obj), text(obj, "spec", "holderIdentity"), age(obj, ctx)])


def slice_ports(ports: list[Any]) -> str:
    shown: list[str] = []
    more = False
    for port in ports:
        if len(shown) < _LIMIT:
            value = dig(port, "port")
            if isinstance(value, int) and not isinstance(value, bool):
                shown.append(str(value))
            elif isinstance(dig(port, "name"), str):
                shown.append(text(port, "name"))
            else:
                shown.append("*")
        elif len(shown) == _LIMIT:
            more = True
    return more_list(shown, more, len(ports), _LIMIT, "<unset>")


def slice_endpoints(endpoints: list[Any]) -> str:
    shown: list[str] = []
    more = False
    count = 0
    for endpoint in endpoints:
        for address in items(endpoint, "addresses"):
            if len(shown) < _LIMIT:
                shown.append(str(address))
            elif len(shown) == _LIMIT:
                more = True
            count += 1
    return more_list(shown, more, count, _LIMIT, "<unset>")


_SLICE = "io.k8s.api.discovery.v1.EndpointSlice"

ENDPOINT_SLICE = Printer((
    NAME,
    Column("AddressType", doc=(_SLICE, "addressType")),
    Column("Ports", doc=(_SLICE, "ports")),
    Column("Endpoints", doc=(_SLICE, "endpoints")),
    AGE,
), lambda obj, ctx: [name_of(obj), text(obj, "addressType"), slice_ports(items(obj, "ports")),
                     slice_endpoints(items(obj, "endpoints")), age(obj, ctx)])


def _budget(obj: JSON, field: str) -> str:
    value = dig(obj, "spec", field)
    return "N/A" if value is None else int_or_string(value)


POD_DISRUPTION_BUDGET = Printer((
    NAME,
    Column("Min Available", doc="The minimum number of pods that must be available."),
    Column("Max Unavailable", doc="The maximum number of pods that may be unavailable."),
    Column("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
    AGE,
), lambda obj, ctx: [name_of(obj), _budget(obj, "minAvailable"), _budget(obj, "maxUnavailable"),
                     number(obj, "status", "disruptionsAllowed"), age(obj, ctx)])


def subjects(obj: JSON) -> list[str]:
    """Users, groups and service accounts of a binding, each list joined with ", "."""
    users: list[str] = []
    groups: list[str] = []
    accounts: list[str] = []
    for subject in items(obj, "subjects"):
        if not isinstance(subject, Mapping):
            continue
        kind = subject.get("kind")
        if kind == "ServiceAccount":
            accounts.append(f"{text(subject, 'namespace')}/{text(subject, 'name')}")
        elif kind == "User":
            users.append(text(subject, "name"))
        elif kind == "Group":
            groups.append(text(subject, "name"))
    return [", ".join(users), ", ".join(groups), ", ".join(accounts)]


def _binding_printer(what: str) -> Printer:
    return Printer((
        NAME,
        Column("Role", doc=(f"io.k8s.api.rbac.v1.{what}", "roleRef")),
        AGE,
        wide("Users", f"Users in the {what[0].lower()}{what[1:]}"),
        wide("Groups", f"Groups in the {what[0].lower()}{what[1:]}"),
        wide("ServiceAccounts", f"ServiceAccounts in the {what[0].lower()}{what[1:]}"),
    ), lambda obj, ctx: [name_of(obj), f"{text(obj, 'roleRef', 'kind')}/{text(obj, 'roleRef', 'name')}",
                         age(obj, ctx), *subjects(obj)])


ROLE_BINDING = _binding_printer("RoleBinding")
CLUSTER_ROLE_BINDING = _binding_printer("ClusterRoleBinding")


_PC = "io.k8s.api.scheduling.v1.PriorityClass"


def _priority_cells(obj: JSON, ctx: Context) -> list[Any]:
    default = obj.get("globalDefault")
    return [name_of(obj), number(obj, "value"), default if isinstance(default, bool) else False, age(obj, ctx),
            text(obj, "preemptionPolicy")]


PRIORITY_CLASS = Printer((
    NAME,
    Column("Value", "integer", (_PC, "value")),
    Column("Global-Default", "boolean", (_PC, "globalDefault")),
    AGE,
    Column("PreemptionPolicy", doc=(_PC, "preemptionPolicy")),
), _priority_cells)
