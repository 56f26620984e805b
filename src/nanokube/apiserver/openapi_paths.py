"""OpenAPI v3 path items for the resources of one group-version, in kube-apiserver's style.

One resource yields its collection path (list/create/deletecollection), its item path (get/replace/patch/delete),
a cross-namespace list path for namespaced kinds (``/apis/apps/v1/deployments``) and one path per subresource.
Operations carry what clients read from them: ``x-kubernetes-group-version-kind`` and ``x-kubernetes-action``
(kubectl explain finds a resource's kind this way), Kubernetes-style ``operationId``s
(``patchAppsV1NamespacedDeployment``), and on every PATCH the ``fieldValidation`` query parameter: kubectl
switches to server-side validation only when *every* PATCH operation of the kind declares it. PATCH bodies list
``application/strategic-merge-patch+json`` for built-in kinds only; kubectl computes a strategic merge patch from
the served schema when it is listed, and custom resources have no patch strategies.

Schemas are referenced by component name; the caller supplies the names (``SchemaNames``) and later collects
the referenced components. Content types list JSON only, the one encoding the server writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from nanokube.api.registry import Resource, Subresource

# (group, version, kind) -> component name in #/components/schemas, or None when there is no schema.
SchemaNames = Callable[[str, str, str], str | None]

COMPONENTS = "#/components/schemas/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
BUILTIN_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json",
                       "application/merge-patch+json", "application/strategic-merge-patch+json")
CUSTOM_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json")

_PARAMS: dict[str, tuple[str, str]] = {
    "pretty": ("string", "If 'true', then the output is pretty printed."),
    "dryRun": ("string", "When present, indicates that modifications should not be persisted. Valid values are: "
                         "- All: all dry run stages will be processed"),
    "fieldManager": ("string", "fieldManager is a name associated with the actor or entity that is making these "
                               "changes. Required for apply requests (application/apply-patch)."),
    "fieldValidation": ("string", "fieldValidation instructs the server on how to handle objects in the request "
                                  "(POST/PUT/PATCH) containing unknown or duplicate fields: Ignore, Warn or Strict."),
    "force": ("boolean", "Force is going to \"force\" Apply requests: the caller re-acquires conflicting fields "
                         "owned by other managers. Must be unset for non-apply patch requests."),
    "allowWatchBookmarks": ("boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."),
    "continue": ("string", "The continue token returned by a previous list call with a limit."),
    "fieldSelector": ("string", "A selector to restrict the list of returned objects by their fields."),
    "labelSelector": ("string", "A selector to restrict the list of returned objects by their labels."),
    "limit": ("integer", "Maximum number of responses to return for a list call; continue with the token."),
    "resourceVersion": ("string", "Constrains which resource versions the request may be served from."),
    "resourceVersionMatch": ("string", "How resourceVersion is applied to list calls: Exact or NotOlderThan."),
    "sendInitialEvents": ("boolean", "Start a watch with synthetic ADDED events for the current state, "
                                     "then a bookmark annotated k8s.io/initial-events-end."),
    "timeoutSeconds": ("integer", "Timeout for the list/watch call, regardless of activity."),
    "watch": ("boolean", "Watch for changes to the described resources and return them as a stream."),
    "gracePeriodSeconds": ("integer", "The duration in seconds before the object should be deleted."),
    "ignoreStoreReadErrorWithClusterBreakingPotential": ("boolean", "Delete an object whose stored data "
                                                                    "cannot be read (unsafe)."),
    "orphanDependents": ("boolean", "Deprecated: use propagationPolicy. Orphan the dependent objects."),
    "propagationPolicy": ("string", "Whether and how garbage collection is performed: Orphan, Background or "
                                    "Foreground."),
    "container": ("string", "The container for which to stream logs or run the command."),
    "follow": ("boolean", "Follow the log stream of the pod."),
    "insecureSkipTLSVerifyBackend": ("boolean", "Do not verify the serving certificate of the kubelet."),
    "limitBytes": ("integer", "The number of bytes to read from the server before terminating the log output."),
    "previous": ("boolean", "Return previous terminated container logs."),
    "sinceSeconds": ("integer", "A relative time in seconds before the current time from which to show logs."),
    "stream": ("string", "The log stream to return: All, Stdout or Stderr."),
    "tailLines": ("integer", "The number of lines from the end of the logs to show."),
    "timestamps": ("boolean", "Prefix every line of log output with an RFC3339 timestamp."),
    "command": ("string", "Command is the remote command to execute. argv array."),
    "stdin": ("boolean", "Redirect the standard input stream of the pod for this call."),
    "stdout": ("boolean", "Redirect the standard output stream of the pod for this call."),
    "stderr": ("boolean", "Redirect the standard error stream of the pod for this call."),
    "tty": ("boolean", "Allocate a terminal for this call."),
    "ports": ("integer", "List of ports to forward."),
    "path": ("string", "Path is the URL path to use for the current proxy request."),
}
_LIST = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
         "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
_WRITE = ("dryRun", "fieldManager", "fieldValidation")
_DELETE = ("dryRun", "gracePeriodSeconds", "ignoreStoreReadErrorWithClusterBreakingPotential", "orphanDependents",
           "propagationPolicy")
_CONNECT = {
    "exec": ("command", "container", "stderr", "stdin", "stdout", "tty"),
    "attach": ("container", "stderr", "stdin", "stdout", "tty"),
    "portforward": ("ports",),
    "proxy": ("path",),
}
_LOG = ("container", "follow", "insecureSkipTLSVerifyBackend", "limitBytes", "previous", "sinceSeconds", "stream",
        "tailLines", "timestamps")
_METHODS = {"get": "get", "create": "post", "update": "put", "patch": "patch", "delete": "delete"}


def query(names: Iterable[str]) -> list[dict[str, Any]]:
    return [{"name": n, "in": "query", "description": _PARAMS[n][1],
             "schema": {"type": _PARAMS[n][0], "uniqueItems": True}} for n in names]


def path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "uniqueItems": True}}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": COMPONENTS + name}


def group_token(group: str) -> str:
    """``rbac.authorization.k8s.io`` -> ``RbacAuthorization``; the core group -> ``Core`` (as in operationIds)."""
    if not group:
        return "Core"
    trimmed = group.removesuffix(".k8s.io")
    return "".join(p[:1].upper() + p[1:] for p in trimmed.replace("-", ".").split(".") if p)


def tag(group: str, version: str) -> str:
    token = group_token(group)
    return f"{token[:1].lower()}{token[1:]}_{version}"


def responses(codes: dict[str, str], schema: dict[str, Any] | None, media: Iterable[str] = ("application/json",)
              ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code, description in codes.items():
        out[code] = {"description": description}
        if schema is not None:
            out[code]["content"] = {m: {"schema": schema} for m in media}
    out["401"] = {"description": "Unauthorized"}
    return out


class _GroupVersion:
    """Builds the paths of one group-version; ``names`` resolves kinds to schema components."""

    def __init__(self, group: str, version: str, names: SchemaNames) -> None:
        self.group, self.version, self.names = group, version, names
        self.prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        self.gv_token = group_token(group) + version[:1].upper() + version[1:]
        self.tags = [tag(group, version)]
        self.paths: dict[str, dict[str, Any]] = {}

    def schema(self, group: str, version: str, kind: str) -> dict[str, Any] | None:
        name = self.names(group, version, kind)
        return ref(name) if name else None

    def op(self, action: str, op_id: str, description: str, gvk: dict[str, str], resp: dict[str, Any],
           params: Iterable[str] = (), body: dict[str, Any] | None = None) -> dict[str, Any]:
        operation: dict[str, Any] = {"description": description, "operationId": op_id, "tags": self.tags,
                                     "responses": resp, "x-kubernetes-action": action,
                                     "x-kubernetes-group-version-kind": gvk}
        if params:
            operation["parameters"] = query(params)
        if body is not None:
            operation["requestBody"] = body
        return operation

    def add(self, path: str, params: list[dict[str, Any]], ops: dict[str, dict[str, Any]]) -> None:
        if ops:
            self.paths[path] = {"parameters": params, **ops}

    def resource(self, r: Resource) -> None:
        verbs = {"create"} if not r.stored else set(r.verbs)
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        obj = self.schema(r.group, r.version, r.kind)
        lst = self.schema(r.group, r.version, r.list_kind)
        scope = "Namespaced" if r.namespaced else ""
        ns = "/namespaces/{namespace}" if r.namespaced else ""
        ns_params = [path_param("namespace", "object name and auth scope, such as for teams and projects")] if ns else []
        pretty = query(["pretty"])
        name_param = [path_param("name", f"name of the {r.kind}")]
        body = {"content": {"*/*": {"schema": obj}}, "required": True} if obj else None
        one = f"{self.gv_token}{scope}{r.kind}"
        status = self.schema("", "v1", "Status")
        delete_body = {"content": {"*/*": {"schema": self.schema("", "v1", "DeleteOptions")}}}

        coll: dict[str, dict[str, Any]] = {}
        if "list" in verbs:
            coll["get"] = self.op("list", f"list{one}", f"list or watch objects of kind {r.kind}", gvk,
                                  responses({"200": "OK"}, lst, ("application/json", "application/json;stream=watch")),
                                  _LIST)
        if "create" in verbs:
            coll["post"] = self.op("post", f"create{one}", f"create a{_n(r.kind)} {r.kind}", gvk,
                                   responses({"200": "OK", "201": "Created", "202": "Accepted"}, obj), _WRITE, body)
        if "deletecollection" in verbs:
            coll["delete"] = self.op("deletecollection", f"delete{self.gv_token}Collection{scope}{r.kind}",
                                     f"delete collection of {r.kind}", gvk, responses({"200": "OK"}, status),
                                     (*_DELETE, *_LIST), delete_body)
        base = f"{self.prefix}{ns}/{r.plural}"
        self.add(base, ns_params + pretty, coll)

        item: dict[str, dict[str, Any]] = {}
        if "get" in verbs:
            item["get"] = self.op("get", f"read{one}", f"read the specified {r.kind}", gvk,
                                  responses({"200": "OK"}, obj))
        if "update" in verbs:
            item["put"] = self.op("put", f"replace{one}", f"replace the specified {r.kind}", gvk,
                                  responses({"200": "OK", "201": "Created"}, obj), _WRITE, body)
        if "patch" in verbs:
            item["patch"] = self.patch_op(f"patch{one}", f"partially update the specified {r.kind}", gvk, obj,
                                          strategic=not r.custom)
        if "delete" in verbs:
            item["delete"] = self.op("delete", f"delete{one}", f"delete a{_n(r.kind)} {r.kind}", gvk,
                                     responses({"200": "OK", "202": "Accepted"}, status), _DELETE, delete_body)
        self.add(base + "/{name}", name_param + ns_params + pretty, item)

        if r.namespaced and "list" in verbs:
            self.add(f"{self.prefix}/{r.plural}", pretty, {"get": self.op(
                "list", f"list{self.gv_token}{r.kind}ForAllNamespaces", f"list or watch objects of kind {r.kind}",
                gvk, responses({"200": "OK"}, lst, ("application/json", "application/json;stream=watch")), _LIST)})
        for sub in r.subresources:
            self.subresource(r, sub, f"{base}/{{name}}/{sub.name}", one, name_param + ns_params + pretty)

    def patch_op(self, op_id: str, description: str, gvk: dict[str, str], obj: dict[str, Any] | None,
                 strategic: bool) -> dict[str, Any]:
        patch = self.schema("", "v1", "Patch")
        types = BUILTIN_PATCH_TYPES if strategic else CUSTOM_PATCH_TYPES
        body = {"content": {t: {"schema": patch} for t in types}, "required": True}
        return self.op("patch", op_id, description, gvk, responses({"200": "OK", "201": "Created"}, obj),
                       (*_WRITE, "force"), body)

    def subresource(self, r: Resource, sub: Subresource, path: str, one: str, params: list[dict[str, Any]]) -> None:
        group, version = sub.group or r.group, sub.version or r.version
        gvk = {"group": group, "version": version, "kind": sub.kind}
        suffix = sub.name[:1].upper() + sub.name[1:]
        ops: dict[str, dict[str, Any]] = {}
        if sub.kind.endswith("Options"):  # exec, attach, portforward, proxy: streaming "connect" operations
            for verb in sub.verbs:
                method = _METHODS[verb]
                op_id = f"connect{self.gv_token}{method.capitalize()}{one[len(self.gv_token):]}{suffix}"
                ops[method] = self.op("connect", op_id, f"connect {method.upper()} requests to {sub.name} of {r.kind}",
                                      gvk, responses({"200": "OK"}, {"type": "string"}, ("*/*",)),
                                      _CONNECT.get(sub.name, ()))
            self.add(path, params, ops)
            return
        if sub.name == "log":
            ops["get"] = self.op("get", f"read{one}Log", f"read log of the specified {r.kind}", gvk,
                                 responses({"200": "OK"}, {"type": "string"}, ("text/plain", "application/json")), _LOG)
            self.add(path, params, ops)
            return
        obj = self.schema(group, version, sub.kind)
        body = {"content": {"*/*": {"schema": obj}}, "required": True} if obj else None
        what = f"{sub.name} of"
        for verb in sub.verbs:
            if verb == "get":
                ops["get"] = self.op("get", f"read{one}{suffix}", f"read {what} the specified {r.kind}", gvk,
                                     responses({"200": "OK"}, obj))
            elif verb == "update":
                ops["put"] = self.op("put", f"replace{one}{suffix}", f"replace {what} the specified {r.kind}", gvk,
                                     responses({"200": "OK", "201": "Created"}, obj), _WRITE, body)
            elif verb == "patch":
                ops["patch"] = self.patch_op(f"patch{one}{suffix}", f"partially update {what} the specified {r.kind}",
                                             gvk, obj, strategic=not r.custom)
            elif verb == "create":
                ops["post"] = self.op("post", f"create{one}{suffix}", f"create {sub.name} of a{_n(r.kind)} {r.kind}",
                                      gvk, responses({"200": "OK", "201": "Created", "202": "Accepted"}, obj),
                                      _WRITE, body)
        self.add(path, params, ops)

    def discovery_path(self) -> None:
        resp = responses({"200": "OK"}, self.schema("", "v1", "APIResourceList"))
        self.paths[f"{self.prefix}/"] = {"get": {"description": "get available resources",
                                                 "operationId": f"get{self.gv_token}APIResources",
                                                 "tags": self.tags, "responses": resp}}


def _n(kind: str) -> str:
    return "n" if kind[:1] in "AEIOU" else ""


def group_version_paths(group: str, version: str, resources: Iterable[Resource], names: SchemaNames
                        ) -> dict[str, dict[str, Any]]:
    """Every path of one group-version: its discovery path and those of each resource, in path order."""
    builder = _GroupVersion(group, version, names)
    builder.discovery_path()
    for resource in resources:
        builder.resource(resource)
    return dict(sorted(builder.paths.items()))


def discovery_paths(path: str, names: SchemaNames) -> dict[str, dict[str, Any]]:
    """The single GET path of the ``api``, ``apis`` and ``apis/<group>`` documents."""
    if path == "api":
        op_id, kind = "getCoreAPIVersions", "APIVersions"
    elif path == "apis":
        op_id, kind = "getAPIVersions", "APIGroupList"
    else:
        op_id, kind = f"get{group_token(path.removeprefix('apis/'))}APIGroup", "APIGroup"
    name = names("", "v1", kind)
    resp = responses({"200": "OK"}, ref(name) if name else None)
    return {f"/{path}/": {"get": {"description": "get information of the API", "operationId": op_id,
                                  "tags": [path.rsplit("/", 1)[-1]], "responses": resp}}}
