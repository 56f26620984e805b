"""``spec.podFailurePolicy``: what a failed Pod means for its Job (``pod_failure_policy.go``).

Rules are tried in order; the first whose ``onExitCodes`` (a terminated container, init containers after
regular ones, with a non-zero exit code In/NotIn the values) or ``onPodConditions`` (a condition of that type
and status) matches decides: ``FailJob`` fails the Job with a message naming the container or condition,
``Ignore`` does not count the failure against ``backoffLimit``, ``Count`` counts it, ``FailIndex`` fails the
Pod's index (Indexed Jobs with ``backoffLimitPerIndex``). No matching rule counts the failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nanokube.client.interface import JSON

from .pods import meta, status


@dataclass(frozen=True)
class Verdict:
    fail_job_message: str | None  # set when a FailJob rule matched
    counts: bool  # whether the failure counts towards backoffLimit / backoffLimitPerIndex
    action: str | None  # the matched rule's action, None when no rule matched


NO_RULE = Verdict(None, True, None)


def match(policy: dict[str, Any] | None, pod: JSON) -> Verdict:
    if not policy:
        return NO_RULE
    for index, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action")
        subject: str | None = None
        on_exit = rule.get("onExitCodes")
        if on_exit is not None:
            container = _matching_container(pod, on_exit)
            if container is None:
                continue
            code = container["state"]["terminated"].get("exitCode")
            subject = (f"Container {container.get('name')} for pod {_name(pod)} failed with exit code {code} "
                       f"matching {action} rule at index {index}")
        elif rule.get("onPodConditions") is not None:
            cond = _matching_condition(pod, rule["onPodConditions"])
            if cond is None:
                continue
            subject = f"Pod {_name(pod)} has condition {cond.get('type')} matching {action} rule at index {index}"
        else:
            continue
        if action == "Ignore":
            return Verdict(None, False, "Ignore")
        if action in ("Count", "FailIndex"):
            return Verdict(None, True, action)
        if action == "FailJob":
            return Verdict(subject, True, "FailJob")
    return NO_RULE


def _name(pod: JSON) -> str:
    return f"{meta(pod).get('namespace', '')}/{meta(pod).get('name', '')}"


def _matching_container(pod: JSON, requirement: dict[str, Any]) -> dict[str, Any] | None:
    for key in ("containerStatuses", "initContainerStatuses"):
        for cs in status(pod).get(key) or []:
            terminated = ((cs or {}).get("state") or {}).get("terminated")
            if not terminated:
                continue
            wanted = requirement.get("containerName")
            if wanted is not None and wanted != cs.get("name"):
                continue
            code = int(terminated.get("exitCode") or 0)
            if code != 0 and _operator_matches(code, requirement):
                return dict(cs)
    return None


def _operator_matches(code: int, requirement: dict[str, Any]) -> bool:
    values = [int(v) for v in requirement.get("values") or []]
    operator = requirement.get("operator")
    if operator == "In":
        return code in values
    if operator == "NotIn":
        return code not in values
    return False


def _matching_condition(pod: JSON, patterns: list[dict[str, Any]]) -> dict[str, Any] | None:
    for cond in status(pod).get("conditions") or []:
        for pattern in patterns:
            if cond.get("type") == pattern.get("type") and cond.get("status") == (pattern.get("status") or "True"):
                return dict(cond)
    return None
