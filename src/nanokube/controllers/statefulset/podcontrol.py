"""Writes to a StatefulSet's Pods and claims, with kube's Events (``StatefulPodControl``).

A member's claims are created before the member and never deleted with it; the retention policy is carried out
by owner references (``claims``) that the garbage collector acts on. Claims are read from an informer cache, as
kube reads its lister; a claim the cache has not seen yet but the server has counts as present.

Events are recorded on the StatefulSet in kube's words: ``SuccessfulCreate`` "create Pod web-0 in StatefulSet
web successful", "create Claim www-web-0 Pod web-0 in StatefulSet web success", ``SuccessfulDelete``, and the
``Failed*`` warnings with the error.
"""

from __future__ import annotations

import logging

from nanokube.api.errors import AlreadyExists, ApiError, Conflict, NotFound
from nanokube.api.objects import deep_copy
from nanokube.client.events import EventRecorder
from nanokube.client.informer import Informer
from nanokube.client.interface import JSON, Client

from . import claims as policy
from .identity import (
    claims_for,
    identity_matches,
    ordinal,
    storage_matches,
    update_identity,
    update_storage,
)

log = logging.getLogger(__name__)
_UPDATE_ATTEMPTS = 5


class StatefulPodControl:
    def __init__(self, client: Client, claims: Informer, recorder: EventRecorder) -> None:
        pods = client.registry.get("", "v1", "pods")
        assert pods is not None
        self.client = client
        self.pods = pods
        self.claims = claims
        self.recorder = recorder

    # -- pods -------------------------------------------------------------------------------------------
    async def create_pod(self, sts: JSON, pod: JSON) -> JSON | None:
        """Create the member's claims, then the member; None when a Pod of that name exists already (the
        cache is behind: the informer will bring it)."""
        try:
            await self.create_claims(sts, pod)
        except ApiError as err:
            await self._pod_event("create", sts, pod, err)
            raise
        try:
            created = await self.client.create(self.pods, _namespace(sts), pod)
        except AlreadyExists:
            return None
        except ApiError as err:
            await self._pod_event("create", sts, pod, err)
            raise
        try:
            await self.update_claims_for_retention(sts, created)
        except ApiError as err:
            await self._pod_event("update", sts, created, err)
            raise
        await self._pod_event("create", sts, created, None)
        return created

    async def update_pod(self, sts: JSON, pod: JSON) -> None:
        """Restore the member's identity and storage and its claims' references (``UpdateStatefulPod``)."""
        pod = deep_copy(pod)
        attempted = False
        error: ApiError | None = None
        for attempt in range(_UPDATE_ATTEMPTS):
            consistent = True
            if not identity_matches(sts, pod):
                update_identity(sts, pod)
                consistent = False
            try:
                if not storage_matches(sts, pod):
                    update_storage(sts, pod)
                    consistent = False
                    await self.create_claims(sts, pod)
                if not self.claims_match_retention(sts, pod):
                    await self.update_claims_for_retention(sts, pod)
            except ApiError as err:
                await self._pod_event("update", sts, pod, err)
                raise
            if consistent:
                return
            attempted = True
            try:
                await self.client.update(self.pods, _namespace(sts), pod)
                error = None
                break
            except Conflict as err:
                error = err
                if attempt + 1 < _UPDATE_ATTEMPTS:
                    pod = deep_copy(await self.client.get(self.pods, _namespace(sts), pod["metadata"]["name"]))
            except ApiError as err:
                error = err
                break
        if attempted:
            await self._pod_event("update", sts, pod, error)
        if error is not None:
            raise error

    async def delete_pod(self, sts: JSON, pod: JSON) -> None:
        """Delete the member (only the one we saw: a uid precondition). Already gone is fine."""
        meta = pod["metadata"]
        try:
            await self.client.delete(self.pods, _namespace(sts), meta["name"], uid=meta.get("uid"))
        except NotFound:
            return
        except Conflict:
            return  # another Pod of that name by now: our cache was behind, the next sync sees it
        except ApiError as err:
            await self._pod_event("delete", sts, pod, err)
            raise
        await self._pod_event("delete", sts, pod, None)

    # -- claims -----------------------------------------------------------------------------------------
    def _claim(self, namespace: str, name: str) -> JSON | None:
        return self.claims.get(f"{namespace}/{name}")

    async def create_claims(self, sts: JSON, pod: JSON) -> None:
        """Create the member's missing claims (``createPersistentVolumeClaims``); a claim being deleted is an
        error, so that no Pod starts on a claim about to go."""
        errors: list[str] = []
        for claim in claims_for(sts, ordinal(pod)).values():
            name = claim["metadata"]["name"]
            existing = self._claim(_namespace(sts), name)
            if existing is None:
                try:
                    await self.client.create(self.claims.resource, _namespace(sts), claim)
                except AlreadyExists:
                    existing = await self._fresh_claim(_namespace(sts), name)
                except ApiError as err:
                    errors.append(f"failed to create PVC {name}: {err.message}")
                    await self._claim_event(sts, pod, name, err)
                    continue
                else:
                    await self._claim_event(sts, pod, name, None)
                    continue
            if existing is not None and existing["metadata"].get("deletionTimestamp"):
                errors.append(f"pvc {name} is being deleted")
        if errors:
            raise ApiError("; ".join(errors) if len(errors) == 1 else "[" + ", ".join(errors) + "]")

    async def _fresh_claim(self, namespace: str, name: str) -> JSON | None:
        try:
            return await self.client.get(self.claims.resource, namespace, name)
        except NotFound:
            return None

    def claims_match_retention(self, sts: JSON, pod: JSON) -> bool:
        """Every existing claim of the member has the references the retention policy wants."""
        for claim in claims_for(sts, ordinal(pod)).values():
            existing = self._claim(_namespace(sts), claim["metadata"]["name"])
            if existing is not None and not policy.owner_refs_up_to_date(existing, sts, pod):
                return False
        return True

    async def update_claims_for_retention(self, sts: JSON, pod: JSON) -> None:
        """Rewrite the member's claims' references to match the retention policy
        (``UpdatePodClaimForRetentionPolicy``)."""
        for claim in claims_for(sts, ordinal(pod)).values():
            name = claim["metadata"]["name"]
            existing = self._claim(_namespace(sts), name)
            if existing is None:
                continue  # not seen yet: the next sync sets its references
            if policy.has_unexpected_controller(existing, sts, pod):
                await self.recorder.event(sts, "Warning", "ConflictingController",
                                          f"PersistentVolumeClaim {name} has a conflicting OwnerReference that "
                                          "acts as a manging controller, the retention policy is ignored for "
                                          "this claim")
            if policy.owner_refs_up_to_date(existing, sts, pod):
                continue
            body = deep_copy(existing)
            policy.update_owner_refs(body, sts, pod)
            try:
                await self.client.update(self.claims.resource, _namespace(sts), body)
            except ApiError as err:
                raise ApiError(f"could not update claim {name} for delete policy ownerRefs: {err.message}") from err

    def pod_claim_is_stale(self, sts: JSON, pod: JSON) -> bool:
        """With ``whenScaled: Delete``, a claim still owned by an earlier Pod of this name is about to be
        collected: the Pod must wait for it to go (``PodClaimIsStale``)."""
        if policy.retention_policy(sts)[1] == policy.RETAIN:
            return False
        for claim in claims_for(sts, ordinal(pod)).values():
            existing = self._claim(_namespace(sts), claim["metadata"]["name"])
            if existing is not None and policy.stale_for_pod(existing, pod):
                return True
        return False

    async def create_missing_claims(self, sts: JSON, pod: JSON) -> None:
        """For a pending member: create any claim that went missing and set the references."""
        await self.create_claims(sts, pod)
        try:
            await self.update_claims_for_retention(sts, pod)
        except ApiError as err:
            await self._pod_event("update", sts, pod, err)
            raise

    # -- events -----------------------------------------------------------------------------------------
    async def _pod_event(self, verb: str, sts: JSON, pod: JSON, err: ApiError | None) -> None:
        name, set_name = pod["metadata"].get("name", ""), sts["metadata"]["name"]
        if err is None:
            await self.recorder.event(sts, "Normal", f"Successful{verb.title()}",
                                      f"{verb} Pod {name} in StatefulSet {set_name} successful")
        else:
            await self.recorder.event(sts, "Warning", f"Failed{verb.title()}",
                                      f"{verb} Pod {name} in StatefulSet {set_name} failed error: {err.message}")

    async def _claim_event(self, sts: JSON, pod: JSON, claim: str, err: ApiError | None) -> None:
        name, set_name = pod["metadata"].get("name", ""), sts["metadata"]["name"]
        if err is None:
            await self.recorder.event(sts, "Normal", "SuccessfulCreate",
                                      f"create Claim {claim} Pod {name} in StatefulSet {set_name} success")
        else:
            await self.recorder.event(sts, "Warning", "FailedCreate",
                                      f"create Claim {claim} for Pod {name} in StatefulSet {set_name} failed "
                                      f"error: {err.message}")


def _namespace(sts: JSON) -> str:
    return str(sts["metadata"].get("namespace", ""))
