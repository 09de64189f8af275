"""A small kustomize, enough for deploy/k8s: so the manifests can be rendered and validated where
no `kubectl`/`kustomize` binary exists (neither is packaged by Debian or PyPI).

Supports what deploy/k8s uses and refuses anything else loudly: `resources` (files, or folders
holding a kustomization.yaml), `namespace`, `images` (newName/newTag) and `patches` given by
`path` (strategic-merge patches: maps merge, lists of named items merge by name, other lists are
replaced). Where kubectl exists, tests/deploy/test_k8s.py checks this renders what it renders.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PersistentVolume", "StorageClass", "PriorityClass"}


class Unsupported(Exception):
    """The kustomization uses a feature this renderer does not implement."""


def load_documents(path: Path) -> list[Resource]:
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def build(folder: Path) -> list[Resource]:
    """The resources `kubectl kustomize folder` would print, in file order."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise Unsupported(f"{folder}/kustomization.yaml uses {sorted(unknown)}; extend "
                          "tests/deploy/kustomize.py (or check with kubectl kustomize)")
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        target = (folder / entry).resolve()
        resources += build(target) if target.is_dir() else load_documents(target)
    for patch_entry in kustomization.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise Unsupported(f"patch {patch_entry}: only strategic-merge patches by path")
        for patch in load_documents(folder / patch_entry["path"]):
            _apply_patch(resources, patch)
    for image in kustomization.get("images", []):
        for resource in resources:
            _set_image(resource, image)
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    return resources


def key(resource: Resource) -> tuple[str, str]:
    return resource["kind"], resource["metadata"]["name"]


def _apply_patch(resources: list[Resource], patch: Resource) -> None:
    matches = [i for i, r in enumerate(resources) if key(r) == key(patch)]
    if len(matches) != 1:
        raise ValueError(f"patch for {key(patch)} matches {len(matches)} resources")
    resources[matches[0]] = merge(resources[matches[0]], patch)


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge, as far as deploy/k8s needs it."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for name, value in patch.items():
            merged[name] = merge(base[name], value) if name in base else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and _named(base) and _named(patch):
        merged_list = copy.deepcopy(base)
        for item in patch:
            at = next((i for i, b in enumerate(merged_list) if b["name"] == item["name"]), None)
            if at is None:
                merged_list.append(copy.deepcopy(item))
            else:
                merged_list[at] = merge(merged_list[at], item)
        return merged_list
    return copy.deepcopy(patch)


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _set_image(resource: Resource, image: dict[str, str]) -> None:
    spec = resource.get("spec", {}).get("template", {}).get("spec", {})
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        name, _, tag = container["image"].partition(":")
        if name == image["name"]:
            container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
