"""pipeline.yaml -> validated stages: profiles and `--set` overrides merged, params checked by each stage's model.

    stages:
      <name>:
        module: stages.<name>     # a module with `Params` and `run(params, inputs, out)`
        inputs: [<stage>, ...]    # upstream stages whose artefacts `run` receives, keyed by stage name
        inputs: {<name>: <stage>} # or keyed by the name `run` reads (finetune's `scenes` from stage `s3dis`)
        params: {...}             # the default profile
      <name>:
        like: <stage>             # a variant: that stage's module, inputs and final params (profile and --set
        params: {...}             # applied), these merged over (e.g. another seed); its own `inputs:` replace
                                  # the stage's; no `module:`, and no variant of a variant
    profiles:
      <profile>: {<stage>: {<param>: value}}   # deep-merged over the defaults
    base: {pipeline: <file>, profile: <name>, stages: [<stage>, ...]}   # optional: stages of another file
"""

from __future__ import annotations

import copy
import difflib
import importlib
import typing
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from types import ModuleType
from typing import Any

import pydantic
import yaml


# The name results pages and scripts/check_results.sh give a pipeline's own params (no profile).
DEFAULT_PROFILE = "default"
# The project's pipeline file: the CLI's default, and the one whose profiles' pages check_results.sh checks.
DEFAULT_PIPELINE = Path("pipeline.yaml")


class PipelineError(ValueError):
    """A problem with the pipeline definition, its params or its artefacts, found before or between stages."""


@dataclass(frozen=True)
class Stage:
    name: str
    module: ModuleType
    inputs: tuple[str, ...]  # upstream stage names
    params: pydantic.BaseModel
    renamed_inputs: dict[str, str] = field(default_factory=dict)  # name `run` reads -> upstream stage

    @property
    def input_names(self) -> dict[str, str]:
        """The key each input has in the dict `run` receives -> the upstream stage whose artefact it is."""
        return self.renamed_inputs or {upstream: upstream for upstream in self.inputs}


@dataclass(frozen=True)
class Pipeline:
    path: Path
    profile: str | None
    stages: dict[str, Stage]  # in dependency order

    def upstream_closure(self, targets: list[str]) -> list[str]:
        """`targets` and everything they need, in dependency order."""
        needed: set[str] = set()
        pending = list(targets)
        while pending:
            name = pending.pop()
            if name not in needed:
                needed.add(name)
                pending.extend(self.stages[name].inputs)
        return [name for name in self.stages if name in needed]


def load_pipeline(path: Path, profile: str | None = None, overrides: list[str] = ()) -> Pipeline:
    """The pipeline of `path` under `profile` (None, or DEFAULT_PROFILE where the file has no profile of that
    name: the stages' own params) with `overrides` (`stage.key=value`) applied; raises PipelineError."""
    document = _read_yaml(path)
    if profile == DEFAULT_PROFILE and DEFAULT_PROFILE not in (document.get("profiles") or {}):
        profile = None  # the name the results pages and check_results.sh give the stages' own params
    stage_entries = document.get("stages")
    if not isinstance(stage_entries, dict) or not stage_entries:
        raise PipelineError(f"{path}: no `stages:` mapping")
    raw_params = {name: copy.deepcopy(entry.get("params") or {}) for name, entry in stage_entries.items()}
    if "base" in document:
        stage_entries = _add_base_stages(document["base"], path, stage_entries, raw_params)
    stage_entries, variants = _resolve_variants(stage_entries, path)
    order = _dependency_order(stage_entries, path)
    if profile is not None:
        _merge_profile(raw_params, document.get("profiles") or {}, profile, path, order)
    for override in overrides:
        _apply_override(raw_params, override, order)
    for name, source in variants.items():  # after both: a variant follows what they did to its stage
        params = copy.deepcopy(raw_params[source])
        _deep_merge(params, raw_params[name])
        raw_params[name] = params
    return Pipeline(path=path, profile=profile, stages=_build_stages(order, stage_entries, raw_params, path))


def unknown_stage(name: str, stages: list[str], what: str = "stage") -> PipelineError:
    """`unknown stage 'finetun' (did you mean 'finetune'?); stages: ...`, the stages in the pipeline's order (every
    error that lists them lists them so). `what` names the kind of name ("profile")."""
    close = difflib.get_close_matches(name, stages, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return PipelineError(f"unknown {what} {name!r}{hint}; {what}s: {', '.join(stages) or 'none'}")


def _build_stages(order: list[str], stage_entries: dict, raw_params: dict, path: Path) -> dict[str, Stage]:
    """Every stage built, or one PipelineError with the problems of all of them (one line each), so that a
    profile with several wrong params costs one run, not one per param."""
    stages, problems = {}, []
    for name in order:
        try:
            stages[name] = _build_stage(name, stage_entries[name], raw_params[name], path)
        except PipelineError as error:
            problems.append(str(error))
    if problems:
        raise PipelineError("\n".join(problems))
    return stages


def _add_base_stages(base: Any, path: Path, stage_entries: dict, raw_params: dict) -> dict:
    """`base: {pipeline: <file, relative to this one>, profile: <name or null>, stages: [...]}`: those stages
    of another pipeline file, with its params under that profile, join this file's (which may not redefine them)."""
    if not isinstance(base, dict) or set(base) - {"pipeline", "profile", "stages"} or not isinstance(base.get("stages"), list):
        raise PipelineError(f"{path}: base must be a mapping with pipeline, stages (a list) and optionally profile")
    base_path = path.parent / base.get("pipeline", "")
    base_pipeline = _read_yaml(base_path)
    base_entries = base_pipeline.get("stages") or {}
    base_params = {name: copy.deepcopy(entry.get("params") or {}) for name, entry in base_entries.items()}
    if base.get("profile") is not None:
        _merge_profile(base_params, base_pipeline.get("profiles") or {}, base["profile"], base_path)
    for name in base["stages"]:
        if name not in base_entries:
            raise PipelineError(f"{path}: base stage {name!r} is not a stage of {base_path}")
        if name in stage_entries:
            raise PipelineError(f"{path}: stage {name!r} is both a base stage and defined here")
        raw_params[name] = base_params[name]
    return {**{name: base_entries[name] for name in base["stages"]}, **stage_entries}


def _resolve_variants(stage_entries: dict, path: Path) -> tuple[dict, dict[str, str]]:
    """Each `like: <stage>` entry as a full one (the named stage's module and inputs, unless it gives its own
    inputs), and {variant: the stage it is like}. Its params are merged later, over the stage's final ones
    (after the profile and --set), so that a variant differs from its stage only where it says so."""
    resolved, variants = {}, {}
    for name, entry in stage_entries.items():
        if not isinstance(entry, dict) or "like" not in entry:
            resolved[name] = entry
            continue
        source = entry["like"]
        if not isinstance(source, str) or source not in stage_entries or source == name:
            raise PipelineError(f"{path}: stage {name!r} is like {source!r}: "
                                f"{unknown_stage(str(source), [n for n in stage_entries if n != name])}")
        if "like" in stage_entries[source]:
            raise PipelineError(f"{path}: stage {name!r} is like {source!r}, itself a variant (of "
                                f"{stage_entries[source]['like']!r}); name that stage instead")
        if "module" in entry:
            raise PipelineError(f"{path}: stage {name!r} gives both like and module; a variant keeps its stage's")
        resolved[name] = {key: value for key, value in {**stage_entries[source], **entry}.items() if key != "like"}
        variants[name] = source
    return resolved, variants


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise PipelineError(f"pipeline file not found: {path}")
    try:
        document = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        raise PipelineError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise PipelineError(f"{path}: expected a mapping at the top level")
    return document


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping, which YAML would resolve silently (last wins).

    A merge key (`<<: *anchor`, YAML 1.1) is allowed: the mapping's own keys override the merged ones, which is
    how two stages share one block of params (pipeline.yaml's pretrain_mae / pretrain_i2p_mae)."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key_node, deep=deep) for key_node, _ in node.value if key_node.tag != _MERGE_TAG]
        repeated = sorted({str(key) for key in keys if keys.count(key) > 1})
        if repeated:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {repeated}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _merge_profile(raw_params: dict, profiles: dict, profile: str, path: Path, order: list[str] | None = None) -> None:
    if profile not in profiles:
        raise PipelineError(f"{path}: {unknown_stage(profile, list(profiles), 'profile')}")
    for stage, params in (profiles[profile] or {}).items():
        if stage not in raw_params:
            raise PipelineError(f"{path}: profile {profile!r} names an {unknown_stage(stage, order or list(raw_params))}")
        _deep_merge(raw_params[stage], params or {})


def _deep_merge(base: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def _apply_override(raw_params: dict, override: str, order: list[str]) -> None:
    """`stage.key[.subkey]=value`, value parsed as YAML (so 3 is an int, [1, 2] a list, null None); `order`: the
    stages in the pipeline's order, for the error that lists them."""
    dotted, separator, text = override.partition("=")
    parts = dotted.strip().split(".")
    if not separator or len(parts) < 2 or not all(parts):
        raise PipelineError(f"--set {override!r}: expected stage.key=value")
    stage, *keys = parts
    if stage not in raw_params:
        raise PipelineError(f"--set {override!r}: {unknown_stage(stage, order)}")
    target = raw_params[stage]
    for key in keys[:-1]:
        target = target.setdefault(key, {})
        if not isinstance(target, dict):
            raise PipelineError(f"--set {override!r}: {stage}.{key} is not a mapping")
    try:
        target[keys[-1]] = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PipelineError(f"--set {override!r}: value is not valid YAML: {error}") from error


def _dependency_order(stage_entries: dict, path: Path) -> list[str]:
    """The pipeline's order: the file's (base stages first), except that a stage comes after its inputs. The
    one order every stage list (errors, status, the run table) is given in."""
    graph = {}
    for name, entry in stage_entries.items():
        inputs = list(_input_names(name, entry, path).values())
        for upstream in inputs:
            if upstream not in stage_entries:
                raise PipelineError(f"{path}: stage {name!r} has unknown input {upstream!r}")
        graph[name] = inputs
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        raise PipelineError(f"{path}: stages form a cycle: {' -> '.join(error.args[1])}") from error
    order: list[str] = []
    while len(order) < len(graph):  # no cycle: some stage whose inputs are all placed is always left
        order.append(next(name for name in graph if name not in order and all(up in order for up in graph[name])))
    return order


def _build_stage(name: str, entry: dict, raw_params: dict, path: Path) -> Stage:
    unknown = set(entry) - {"module", "inputs", "params"}
    if unknown:
        raise PipelineError(f"{path}: stage {name!r} has unknown keys {sorted(unknown)}")
    if "module" not in entry:
        raise PipelineError(f"{path}: stage {name!r} names no module")
    try:
        module = importlib.import_module(entry["module"])
    except ImportError as error:
        raise PipelineError(f"{path}: stage {name!r}: cannot import module {entry['module']!r}: {error}") from error
    if not hasattr(module, "Params") or not hasattr(module, "run"):
        raise PipelineError(f"{path}: module {entry['module']!r} of stage {name!r} lacks `Params` or `run`")
    names = _input_names(name, entry, path)
    return Stage(
        name=name, module=module, inputs=tuple(dict.fromkeys(names.values())),
        params=validate_params(name, module.Params, raw_params),
        renamed_inputs=names if isinstance(entry.get("inputs"), dict) else {},
    )


def _input_names(name: str, entry: dict, path: Path) -> dict[str, str]:
    """`inputs:` as {name `run` reads: upstream stage}; a list names each input after its stage."""
    inputs = entry.get("inputs") or []
    if isinstance(inputs, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in inputs.items()):
        return dict(inputs)
    if isinstance(inputs, list) and all(isinstance(upstream, str) for upstream in inputs):
        return {upstream: upstream for upstream in inputs}
    raise PipelineError(f"{path}: stage {name!r}: inputs must be a list of stages or a mapping name: stage, got {inputs!r}")


def validate_params(stage: str, model: Any, raw_params: dict) -> pydantic.BaseModel:
    """`model` is a pydantic model or a discriminated union of them (a module that runs several methods).

    Errors are one line per issue naming the stage and the param: what was wrong and what is valid (the
    allowed values, or for an unknown key the valid keys and the closest one), never the whole params dict."""
    try:
        return pydantic.TypeAdapter(model).validate_python(raw_params)
    except pydantic.ValidationError as error:
        issues = error.errors()
        if not _is_model(model):
            issues = [_without_union_tag(issue) for issue in issues]
        chosen = model if _is_model(model) else _union_member(model, raw_params)
        raise PipelineError("\n".join(_describe(stage, issue, chosen) for issue in issues)) from None


def _is_model(model: Any) -> bool:
    return isinstance(model, type) and issubclass(model, pydantic.BaseModel)


def _union_member(union: Any, raw_params: dict) -> type[pydantic.BaseModel] | None:
    """The member of a discriminated union (Annotated[A | B, Field(discriminator=...)]) that `raw_params` chose."""
    members, *metadata = typing.get_args(union)
    tags = [info.discriminator for info in metadata if getattr(info, "discriminator", None)]
    for member in typing.get_args(members):
        if tags and _is_model(member) and raw_params.get(tags[0]) in typing.get_args(member.model_fields[tags[0]].annotation):
            return member
    return None


def _without_union_tag(issue: dict) -> dict:
    """A union's issues are located under the chosen member's tag (`ppkt.steps`); the user wrote `steps`. An
    issue with the tag itself (missing or unknown) is located at the discriminator key."""
    if issue["loc"]:
        return {**issue, "loc": issue["loc"][1:]}
    return {**issue, "loc": (issue.get("ctx", {}).get("discriminator", "").strip("'"),)}


def _describe(stage: str, issue: dict, model: type[pydantic.BaseModel] | None) -> str:
    loc = [str(part) for part in issue["loc"]]
    key = ".".join(loc)
    message = issue["msg"].removeprefix("Value error, ")
    if issue["type"] == "extra_forbidden":
        valid = _field_names(model, loc[:-1])
        close = difflib.get_close_matches(loc[-1], valid, n=1)
        hint = f" (did you mean {'.'.join([*loc[:-1], close[0]])!r}?)" if close else ""
        scope = f" of {'.'.join(loc[:-1])}" if loc[:-1] else ""
        return f"stage {stage!r}: unknown param {key!r}{hint}; valid params{scope}: {', '.join(valid)}"
    if not loc:  # a check across params (a model validator): its message names them
        return f"stage {stage!r}: {message}"
    got = issue.get("ctx", {}).get("tag") if issue["type"] == "union_tag_invalid" else issue.get("input")
    return f"stage {stage!r}: param {key!r}: {message} (got {_short(got)})"


def _field_names(model: type[pydantic.BaseModel] | None, loc: list[str]) -> list[str]:
    """The params of `model` at `loc` (a nested model's, for `synthetic.x`); empty when unknown."""
    for part in loc:
        field = model.model_fields.get(part) if model is not None else None
        nested = [arg for arg in (field.annotation, *typing.get_args(field.annotation)) if _is_model(arg)] if field else []
        model = nested[0] if nested else None
    return sorted(model.model_fields) if model is not None else []


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def profile_names(path: Path) -> list[str]:
    """The profiles `path` defines, in file order (its base pipeline's are not its own)."""
    return list(_read_yaml(path).get("profiles") or {})
