#!/usr/bin/env python3
"""Renders a kustomization the way `kubectl kustomize DIR` does, for the features deploy/ uses:
resources (files and directories), namespace, labels, images, replicas, and patches (strategic
merge with `$patch: delete`, and JSON 6902 operations with a target). It exists so that the test
command can validate the rendered manifests on a machine without kustomize or kubectl; anything
else in a kustomization is refused rather than silently ignored.

Usage: kustomize-render.py DIR > rendered.yaml
"""

import copy
import os
import sys

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "replicas", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass"}


def fail(message):
    sys.exit(f"kustomize-render: {message}")


def load_docs(path):
    with open(path, encoding="utf-8") as file:
        return [doc for doc in yaml.safe_load_all(file) if doc is not None]


def render(directory):
    kustomization = load_docs(os.path.join(directory, "kustomization.yaml"))[0]
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        fail(f"{directory}: unsupported fields {sorted(unknown)}")
    resources = []
    for entry in kustomization.get("resources", []):
        path = os.path.join(directory, entry)
        resources.extend(render(path) if os.path.isdir(path) else load_docs(path))
    for patch in kustomization.get("patches", []):
        resources = apply_patch(directory, patch, resources)
    for image in kustomization.get("images", []):
        for resource in resources:
            set_image(resource, image)
    for replicas in kustomization.get("replicas", []):
        matched = [r for r in resources if r["metadata"]["name"] == replicas["name"] and "replicas" in r.get("spec", {})]
        if not matched:
            fail(f"replicas: nothing named {replicas['name']}")
        for resource in matched:
            resource["spec"]["replicas"] = replicas["count"]
    for label in kustomization.get("labels", []):
        if label.get("includeSelectors") or label.get("includeTemplates"):
            fail("labels: only includeSelectors/includeTemplates false is supported")
        for resource in resources:
            resource["metadata"].setdefault("labels", {}).update(label["pairs"])
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = kustomization["namespace"]
    return resources


def same_resource(resource, patch):
    return (
        resource["kind"] == patch["kind"]
        and resource["metadata"]["name"] == patch["metadata"]["name"]
        and resource["apiVersion"] == patch["apiVersion"]
    )


def apply_patch(directory, patch, resources):
    if "path" in patch:
        with open(os.path.join(directory, patch["path"]), encoding="utf-8") as file:
            text = file.read()
    else:
        text = patch["patch"]
    docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    if len(docs) == 1 and isinstance(docs[0], list):
        target = patch.get("target") or fail("a JSON 6902 patch needs a target")
        matched = [r for r in resources if r["kind"] == target["kind"] and r["metadata"]["name"] == target["name"]]
        if not matched:
            fail(f"patch target {target} matches nothing")
        for resource in matched:
            for operation in docs[0]:
                json6902(resource, operation)
        return resources
    for doc in docs:
        if not any(same_resource(r, doc) for r in resources):
            fail(f"strategic merge patch for {doc['kind']}/{doc['metadata']['name']} matches nothing")
        if doc.get("$patch") == "delete":
            resources = [r for r in resources if not same_resource(r, doc)]
        else:
            resources = [merge(r, doc) if same_resource(r, doc) else r for r in resources]
    return resources


def merge(base, patch):
    """Strategic merge for what manifests use: maps merge, lists of named maps merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i for i in base + patch):
        merged = {item["name"]: item for item in copy.deepcopy(base)}
        for item in patch:
            merged[item["name"]] = merge(merged[item["name"]], item) if item["name"] in merged else item
        return list(merged.values())
    return copy.deepcopy(patch)


def json6902(resource, operation):
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in operation["path"].lstrip("/").split("/")]
    node = resource
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key = int(last) if isinstance(node, list) else last
    if operation["op"] in ("replace", "remove") and (key not in node if isinstance(node, dict) else key >= len(node)):
        fail(f"{operation['op']} {operation['path']}: no such field")
    if operation["op"] == "remove":
        del node[key]
    elif operation["op"] in ("add", "replace"):
        if isinstance(node, list) and operation["op"] == "add":
            node.insert(key, operation["value"])
        else:
            node[key] = operation["value"]
    else:
        fail(f"unsupported JSON 6902 op {operation['op']}")


def set_image(resource, image):
    spec = resource.get("spec", {}).get("template", {}).get("spec", {})
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        name, _, tag = container["image"].partition(":")
        if name == image["name"]:
            container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    yaml.safe_dump_all(render(sys.argv[1]), sys.stdout, sort_keys=False)
