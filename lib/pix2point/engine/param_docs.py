"""A stage's params for people (`pix2point params STAGE`): name, type, default, value in the chosen profile and
description, read from the stage's pydantic model. A param's description is its Field description, else the
comment on (or just above) its line in the class that declares it, so the source stays the one place it is written.
"""

from __future__ import annotations

import ast
import functools
import inspect
import io
import json
import textwrap
import tokenize
import types
import typing
from dataclasses import dataclass
from typing import Any

import annotated_types
import pydantic
from pydantic.fields import FieldInfo

_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


@dataclass(frozen=True)
class ParamDoc:
    name: str  # dotted for a nested model's params (synthetic.num_scenes)
    type: str
    default: str
    value: str  # in the pipeline as loaded (profile and --set applied)
    description: str

    @property
    def changed(self) -> bool:
        return self.value != self.default


def param_docs(params: pydantic.BaseModel, prefix: str = "") -> list[ParamDoc]:
    """One ParamDoc per param of `params` (a validated stage Params), nested models expanded in place."""
    model = type(params)
    docs = []
    for name, field in model.model_fields.items():
        value = getattr(params, name)
        if isinstance(value, pydantic.BaseModel):
            docs.extend(param_docs(value, f"{prefix}{name}."))
            continue
        default = field.get_default(call_default_factory=True)
        docs.append(ParamDoc(f"{prefix}{name}", type_name(field), _show(field, default), _show(field, value),
                             field.description or _comment(model, name)))
    return docs


def type_name(field: FieldInfo) -> str:
    """`int >= 1`, `'scannet' | 'synthetic'`, `tuple[int, int]`, `path | None`: the annotation as a user writes values."""
    bounds = [f"{symbol} {getattr(item, attr)}" for item in field.metadata
              for attr, symbol in _BOUNDS.items() if isinstance(item, annotated_types.BaseMetadata) and hasattr(item, attr)]
    return " ".join([_annotation(field.annotation), *bounds])


def _annotation(annotation: Any) -> str:
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(argument) for argument in arguments)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_annotation(argument) for argument in arguments)
    if origin is typing.Annotated:
        return _annotation(arguments[0])
    if annotation is type(None):
        return "None"
    if origin is not None:
        shown = ", ".join("..." if argument is Ellipsis else _annotation(argument) for argument in arguments)
        return f"{getattr(origin, '__name__', str(origin))}[{shown}]"
    if isinstance(annotation, type) and annotation.__name__ in ("Path", "PosixPath"):
        return "path"
    return getattr(annotation, "__name__", str(annotation).removeprefix("typing."))


def _show(field: FieldInfo, value: Any) -> str:
    """A value as it would be written in pipeline.yaml (JSON is valid YAML)."""
    if value is pydantic.fields.PydanticUndefined:
        return "(required)"
    try:
        return json.dumps(pydantic.TypeAdapter(field.annotation).dump_python(value, mode="json"))
    except (pydantic.PydanticSchemaGenerationError, TypeError, ValueError):
        return str(value)


def _comment(model: type[pydantic.BaseModel], name: str) -> str:
    """The comment on the declaring line of `name` (or the comment lines just above it), in the class of
    `model`'s MRO that declares it; empty when there is none."""
    for cls in model.__mro__:
        if name in cls.__dict__.get("__annotations__", {}):
            return _class_comments(cls).get(name, "")
    return ""


@functools.cache
def _class_comments(cls: type) -> dict[str, str]:
    try:
        text = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    lines = text.splitlines()
    comments = {token.start[0]: token.string.lstrip("#").strip()
                for token in tokenize.generate_tokens(io.StringIO(text).readline) if token.type == tokenize.COMMENT}
    found = {}
    for node in ast.parse(text).body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            trailing = [comments[line] for line in range(node.lineno, node.end_lineno + 1) if line in comments]
            above, line = [], node.lineno - 1
            while not trailing and line in comments and lines[line - 1].lstrip().startswith("#"):
                above.insert(0, comments[line])
                line -= 1
            found[node.target.id] = " ".join(trailing or above)
    return found
