"""Cache keys: a stage's artefact is reusable while its name, params, inputs and code are unchanged."""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.machinery
import importlib.util
import json
from pathlib import Path

# Only the project's own code is fingerprinted; library upgrades are pinned by the install instead.
PROJECT_PACKAGES = ("pix2point", "stages")


def stage_key(stage: str, params: dict, input_keys: dict[str, str], code_fingerprint: str) -> str:
    payload = json.dumps(
        {"stage": stage, "params": params, "inputs": input_keys, "code": code_fingerprint},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@functools.cache
def code_fingerprint(module_name: str) -> str:
    """Hash of the source of `module_name` and every project module it imports, transitively.

    Found by reading import statements (ast), so a stage's key changes when code it runs changes and
    not when unrelated code does.
    """
    digest = hashlib.sha256()
    for name in sorted(project_modules_used_by(module_name)):
        digest.update(name.encode())
        digest.update(_source_path(name).read_bytes())
    return digest.hexdigest()[:16]


def project_modules_used_by(module_name: str) -> set[str]:
    """The module and the project modules it imports, transitively (its own top-level package counts as project)."""
    packages = {*PROJECT_PACKAGES, module_name.split(".")[0]}
    seen: set[str] = set()
    pending = [module_name]
    while pending:
        name = pending.pop()
        if name in seen or name.split(".")[0] not in packages or _source_path(name) is None:
            continue
        seen.add(name)
        pending.extend(_parent_packages(name))
        pending.extend(_imported_modules(name))
    return seen


def _parent_packages(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@functools.cache
def _source_path(name: str) -> Path | None:
    """The source file of module `name`, found without importing it or its parent packages.

    importlib.util.find_spec("a.b.c") imports a.b, and `from a.b import c` makes c a candidate even when it
    is a class: fingerprinting would import every module a stage names, torch and MinkowskiEngine with them.
    Only the top-level package is imported (however it is installed); the rest is looked up on disk.
    """
    top, *rest = name.split(".")
    try:
        spec = importlib.util.find_spec(top)
        for depth in range(len(rest)):
            locations = spec.submodule_search_locations if spec is not None else None
            if not locations:
                return None
            spec = importlib.machinery.PathFinder.find_spec(".".join([top, *rest[:depth + 1]]), list(locations))
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imported_modules(name: str) -> list[str]:
    path = _source_path(name)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_relative(node, package)
            found.append(base)
            # `from pkg import name` may import a submodule `pkg.name`; non-modules are filtered later.
            found.extend(f"{base}.{alias.name}" for alias in node.names)
    return found


def _resolve_relative(node: ast.ImportFrom, package: str) -> str:
    if node.level == 0:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base
