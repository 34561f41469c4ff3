"""Every image a synthesised platform will run: its own objects, its charts' objects, its models' images."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipway.images.inventory import ImageUse, inventory
from shipway.platform.synth import SynthResult, kubernetes_objects, releases


@dataclass
class PlatformImages:
    """The images found, and the Helm releases whose own images could not be read."""

    images: list[ImageUse]
    unread_releases: list[str] = field(default_factory=list)


def _name(layer: str, obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{layer}: {obj['kind']} {where}{meta.get('name', '?')}"


def platform_images(result: SynthResult) -> PlatformImages:
    """The platform's images, with every object its charts rendered when the synth rendered them.

    Releases the synth did not render are listed as unread: their images are set inside the chart,
    which only a render shows.
    """
    rendered = {done.release.name: done.objects() for done in result.charts.rendered} if result.charts else {}
    sources: list[tuple[str, Any]] = [(_name(layer, obj), obj) for layer, obj in kubernetes_objects(result)]
    unread = []
    for layer, release in releases(result):
        objects = rendered.get(release["name"])
        if objects is None:
            unread.append(f"{layer}/{release['name']} ({release['chart']} {release['version']})")
            continue
        sources += [(f"{layer}/{release['name']}: {obj['kind']} {obj.get('metadata', {}).get('name', '?')}", obj)
                    for obj in objects]
    profile = result.profile
    sources += [(f"runtime catalog: {name}", {"image": runtime["image"]})
                for name, runtime in profile.get("runtimes", {}).items()]
    sources.append(("model pods: artifact pull and sidecar", {"image": profile["images"]["shipway"]}))
    return PlatformImages(inventory(sources), sorted(unread))
