"""The registry of representations: the header's representation byte → its implementation.

Adding a representation: a module implementing `base.Representation`, and one line in REGISTRY below.
"""

from __future__ import annotations

from nicjax.representations import latent, siren
from nicjax.representations.base import Model, Representation

REGISTRY: dict[int, Representation] = {
    siren.SIREN.id: siren.SIREN,
    latent.LATENT.id: latent.LATENT,
}


def register(representation: Representation) -> None:
    """Adds a representation at run time (tests, plug-ins); its id must be free."""
    if REGISTRY.get(representation.id, representation) is not representation:
        raise ValueError(f"representation id {representation.id} is taken by {REGISTRY[representation.id].name}")
    REGISTRY[representation.id] = representation


def by_name(name: str) -> Representation:
    for rep in REGISTRY.values():
        if rep.name == name:
            return rep
    raise ValueError(f"unknown representation {name!r}: use one of {', '.join(names())}")


def names() -> list[str]:
    return [rep.name for rep in REGISTRY.values()]


__all__ = ["Model", "Representation", "REGISTRY", "register", "by_name", "names", "latent", "siren"]
