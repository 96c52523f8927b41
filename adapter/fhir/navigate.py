"""Finding one's way in FHIR JSON: references inside a Bundle resolved the way FHIR does (fullUrl,
``Type/id``, or an absolute URL ending in ``Type/id``), every reference in a resource, what a set of entries
refers to; extensions by url; the words of a CodeableConcept."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from adapter.types import CONTAINERS, JSON


def extensions(element: JSON, url: str) -> list[JSON]:
    """The extensions (or sub-extensions of a complex extension) of ``element`` with this url."""
    return [e for e in element.get("extension", []) if e.get("url") == url]


def concept_text(concept: JSON | None) -> str:
    """The words of a CodeableConcept (or R5 CodeableReference): its text, else its first display."""
    if not concept:
        return ""
    concept = concept.get("concept", concept)
    return str(
        concept.get("text") or next((c.get("display") for c in concept.get("coding", []) if c.get("display")), "")
    )


class Index:
    """Resources by fullUrl and by ``Type/id``."""

    def __init__(self, resources: Iterable[tuple[str | None, JSON]]) -> None:
        self.all: list[JSON] = []
        self.by_ref: dict[str, JSON] = {}
        for full_url, resource in resources:
            self.all.append(resource)
            if full_url:
                self.by_ref[str(full_url)] = resource
            if resource.get("id"):
                self.by_ref.setdefault(f"{resource.get('resourceType')}/{resource['id']}", resource)

    @classmethod
    def of_bundle(cls, bundle: JSON) -> Index:
        """A Bundle's entries (those with a resource)."""
        entries = [e for e in bundle.get("entry", []) if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
        return cls((e.get("fullUrl"), e["resource"]) for e in entries)

    def of_type(self, rtype: str) -> list[JSON]:
        return [r for r in self.all if r.get("resourceType") == rtype]

    def find(self, reference: JSON | None) -> JSON | None:
        """The resource a reference points at, if it is here."""
        ref = (reference or {}).get("reference")
        if not ref:
            return None
        return self.by_ref.get(ref) or self.by_ref.get("/".join(str(ref).rsplit("/", 2)[-2:]))


def typed_id(reference: str, *, absolute: bool = False) -> tuple[str, str] | None:
    """(type, id) of a literal reference ``Type/id``, and with ``absolute`` of ``[base]/Type/id`` too; None for
    anything else (a contained ``#id``, a version, a search, no id). The one reading of a reference's target."""
    parts = reference.split("/")
    if len(parts) < 2 or (len(parts) > 2 and not absolute) or "?" in reference:
        return None
    rtype, rid = parts[-2], parts[-1]
    return (rtype, rid) if rtype[:1].isupper() and rid else None


def references(value: Any, *, logical: bool = False) -> list[JSON]:
    """Every element holding a literal reference (``{"reference": "Type/id", ...}``) in a resource or any JSON
    (contained ones, ``#id``, aside), in document order; with ``logical``, logical references too (an element
    that is only an ``identifier``). The one walk of references: what reads them reads ``element["reference"]``,
    what rewrites them sets it. (Recursive: what reaches here passed the edge's depth limit.)"""
    found: list[JSON] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            reference = node.get("reference")
            if isinstance(reference, str) and not reference.startswith("#"):
                found.append(node)
            elif logical and node.keys() == {"identifier"}:
                found.append(node)
                return
            node = node.values()
        for item in node:
            if isinstance(item, CONTAINERS):  # a string, number or boolean holds no reference
                walk(item)

    if isinstance(value, CONTAINERS):
        walk(value)
    return found


def path_to(root: Any, target: Any, prefix: str) -> str:
    """Where ``target`` (an element, by identity) lies under ``root``, spelled as FHIR does
    (``Bundle.entry[0].resource.subject``); ``prefix`` names ``root`` itself. For messages: a walk of its own."""
    stack: list[tuple[Any, str]] = [(root, prefix)]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if isinstance(node, dict):
            stack.extend((item, f"{path}.{key}") for key, item in node.items() if isinstance(item, CONTAINERS))
        elif isinstance(node, list):
            stack.extend((item, f"{path}[{n}]") for n, item in enumerate(node) if isinstance(item, CONTAINERS))
    return prefix


def closure(pool: list[JSON], start: list[JSON]) -> list[JSON]:
    """``start`` (Bundle entries) and every entry of ``pool`` they refer to, directly or not, in that order."""
    index = Index.of_bundle({"entry": pool})
    by_resource = {id(e.get("resource")): e for e in pool}
    wanted = {id(e.get("resource")): e for e in start}
    queue = list(start)
    while queue:
        for element in references(queue.pop().get("resource")):
            target = index.find(element)
            if target is not None and id(target) not in wanted and id(target) in by_resource:
                wanted[id(target)] = by_resource[id(target)]
                queue.append(wanted[id(target)])
    return list(wanted.values())
