"""The pieces every printer shares: column definitions, the printer record, ages and Go-style cell formatting.

A printer is data plus one function: the column definitions Kubernetes declares for a kind (``Column``) and a
``cells`` function that turns one object into one row of JSON values, always in the wide layout, because the
API server generates tables with ``Wide: true`` and lets kubectl hide priority-1 columns. Descriptions are the
OpenAPI descriptions of the fields the columns show (the same text as Go's ``SwaggerDoc()``), looked up lazily
from the bundled 1.37 schema and cached, so importing the package costs nothing.

Time handling reproduces ``duration.HumanDuration`` and ``translateTimestampSince`` exactly (truncating integer
arithmetic, ``<unknown>`` for a missing time, ``<invalid>`` for a time more than a second in the future). Every
function takes ``now`` explicitly: printers are pure, and tests fix the clock.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nanokube.api import quantity, schema
from nanokube.api.labels import format_label_selector
from nanokube.util.timeutil import parse_rfc3339

JSON = dict[str, Any]

META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
UNKNOWN = "<unknown>"
NONE = "<none>"
UNSET = "<unset>"


@dataclass(frozen=True)
class Column:
    """One ``TableColumnDefinition``; ``doc`` is a literal description or a (definition, property) to look up."""

    name: str
    type: str = "string"
    doc: str | tuple[str, str] = ""
    priority: int = 0
    format: str = ""

    @property
    def description(self) -> str:
        if isinstance(self.doc, str):
            return self.doc
        return field_description(*self.doc)

    def definition(self) -> JSON:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


@functools.cache
def field_description(definition: str, prop: str) -> str:
    """The OpenAPI description of ``definition.prop``; empty when the 1.37 schema does not have it."""
    props = schema.definitions().get(definition, {}).get("properties", {})
    text = props.get(prop, {}).get("description", "")
    return text if isinstance(text, str) else ""


NAME = Column("Name", format="name", doc=(META, "name"))
AGE = Column("Age", doc=(META, "creationTimestamp"))


def wide(name: str, doc: str | tuple[str, str]) -> Column:
    return Column(name, doc=doc, priority=1)


CONTAINERS = wide("Containers", "Names of each container in the template.")
IMAGES = wide("Images", "Images referenced by each container in the template.")


@dataclass
class Context:
    """What a row needs besides its object: the clock, and facts about the whole list (``shared``)."""

    now: datetime
    shared: dict[str, Any] = field(default_factory=dict)


Cells = Callable[[JSON, Context], list[Any]]


@dataclass(frozen=True)
class Printer:
    """Columns plus the function that fills them; ``conditions`` gives a row's ``TableRowCondition``s;
    ``prepare`` sees every object before any row is printed and fills ``Context.shared``."""

    columns: tuple[Column, ...]
    cells: Cells
    conditions: Callable[[JSON], list[JSON]] | None = None
    prepare: Callable[[list[JSON], Context], None] | None = None


# -- reading objects -------------------------------------------------------------------------------------

def dig(obj: Any, *path: str | int) -> Any:
    """``obj[path[0]][path[1]]...``, or None when any step is missing or of the wrong shape."""
    cur = obj
    for step in path:
        if isinstance(step, str) and isinstance(cur, Mapping):
            cur = cur.get(step)
        elif isinstance(step, int) and isinstance(cur, list) and 0 <= step < len(cur):
            cur = cur[step]
        else:
            return None
    return cur


def text(obj: Any, *path: str | int) -> str:
    value = dig(obj, *path)
    return value if isinstance(value, str) else ""


def number(obj: Any, *path: str | int) -> int:
    value = dig(obj, *path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)


def items(obj: Any, *path: str | int) -> list[Any]:
    value = dig(obj, *path)
    return value if isinstance(value, list) else []


def mapping(obj: Any, *path: str | int) -> Mapping[str, Any]:
    value = dig(obj, *path)
    return value if isinstance(value, Mapping) else {}


def name_of(obj: JSON) -> str:
    return text(obj, "metadata", "name")


# -- time ------------------------------------------------------------------------------------------------

def parse_time(value: Any) -> datetime | None:
    """A metav1.Time/MicroTime string as a datetime; None when absent or unreadable (Go's zero time)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def human_duration(d: timedelta) -> str:
    """``duration.HumanDuration``: ~2-3 significant figures ("5s", "2m3s", "5m", "3h4m", "2d3h", "10d", "2y3d")."""
    micros = d // timedelta(microseconds=1)
    seconds = -((-micros) // 1_000_000) if micros < 0 else micros // 1_000_000  # Go truncates toward zero
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = hours // 24 % 365
        return f"{hours // 24 // 365}y" if rest == 0 else f"{hours // 24 // 365}y{rest}d"
    return f"{hours // 24 // 365}y"


def since(value: Any, now: datetime) -> str:
    """``translateTimestampSince``: the age of a timestamp string, ``<unknown>`` when there is none."""
    when = parse_time(value)
    if when is None:
        return UNKNOWN
    return human_duration(now - when)


def age(obj: JSON, ctx: Context) -> str:
    return since(dig(obj, "metadata", "creationTimestamp"), ctx.now)


# -- Go formatting helpers ---------------------------------------------------------------------------------

def format_labels(labels: Any) -> str:
    """``labels.FormatLabels``: ``k=v`` pairs sorted by key, ``<none>`` when empty."""
    if not isinstance(labels, Mapping) or not labels:
        return NONE
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def format_selector(selector: Any) -> str:
    """``metav1.FormatLabelSelector``: the selector string, ``<none>`` when empty, ``<error>`` when invalid."""
    return format_label_selector(selector if isinstance(selector, Mapping) else None)


def container_cells(containers: Iterable[Any]) -> list[str]:
    """``layoutContainerCells``: names and images, comma-joined."""
    specs = [c for c in containers if isinstance(c, Mapping)]
    return [",".join(text(c, "name") for c in specs), ",".join(text(c, "image") for c in specs)]


def template_containers(obj: JSON) -> list[Any]:
    return items(obj, "spec", "template", "spec", "containers")


def go_bool(value: Any) -> str:
    """``printBoolPtr``: "True", "False", or ``<unset>`` when the field is missing."""
    if not isinstance(value, bool):
        return UNSET
    return "True" if value else "False"


def int_or_string(value: Any) -> str:
    """``intstr.IntOrString.String()``."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def quantity_text(value: Any) -> str:
    """``resource.Quantity.String()`` of a stored quantity; "0" for a missing one (Go's zero Quantity)."""
    if value is None or value == "":
        return "0"
    if isinstance(value, bool):
        return str(value)
    try:
        return quantity.format_quantity(value if isinstance(value, str) else str(value))
    except (ValueError, TypeError):
        return str(value)


def first_true(conditions: Iterable[Any], kind: str) -> bool:
    """Whether the first condition of type ``kind`` has status "True" (later duplicates are ignored)."""
    for cond in conditions:
        if isinstance(cond, Mapping) and cond.get("type") == kind:
            return cond.get("status") == "True"
    return False


def more_list(values: list[str], more: bool, count: int, limit: int, empty: str) -> str:
    """``listWithMoreString``: "a,b,c + N more...", or ``empty`` for no values."""
    joined = ",".join(values)
    if more:
        return f"{joined} + {count - limit} more..."
    return joined or empty
