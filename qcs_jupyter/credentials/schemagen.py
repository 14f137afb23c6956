"""Emit the status contract: JSON Schema from ``contract.py``, TypeScript from the JSON Schema.

``python -m qcs_jupyter.credentials.schemagen`` rewrites both files; ``--check`` only compares and exits 1 on
drift (the tests do the same). The TypeScript is generated from the committed schema, not from the Python
types, so the schema really is the contract between the two sides.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import textwrap
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any

from . import contract

SCHEMA_PATH = Path(__file__).with_name("status.schema.json")
#: The labextension's generated wire types, relative to the repository root (absent from an installed wheel).
TS_RELATIVE = Path("labextension") / "src" / "contract.ts"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_PRIMITIVES = {str: "string", int: "integer", float: "number", bool: "boolean"}


# --- Python types -> JSON Schema -------------------------------------------------------------------------
def build_schema() -> dict[str, Any]:
    """The JSON Schema of ``QCSStatus``, every type in ``$defs`` under its Python (= TypeScript) name."""
    defs = {t.__name__: _enum_def(t) if issubclass(t, Enum) else _object_def(t) for t in contract.WIRE_TYPES}
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "QCSStatus",
        "description": "Generated from qcs_jupyter/credentials/contract.py by "
        "`python -m qcs_jupyter.credentials.schemagen`; do not edit.",
        "$ref": "#/$defs/QCSStatus",
        "$defs": defs,
    }


def _enum_def(enum: type[Enum]) -> dict[str, Any]:
    return {
        "title": enum.__name__,
        "description": _clean(enum.__doc__),
        "type": "string",
        "oneOf": [{"const": m.value, "description": _clean(m.__doc__)} for m in enum],
    }


def _object_def(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    props = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if typing.get_origin(hint) is not typing.Annotated or not isinstance(hint.__metadata__[0], str):
            raise TypeError(f"{cls.__name__}.{f.name} needs Annotated[type, 'description']")
        props[f.name] = {**_type_schema(hint.__origin__), "description": hint.__metadata__[0]}
    return {
        "title": cls.__name__,
        "description": _clean(cls.__doc__),
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


def _type_schema(tp: Any) -> dict[str, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1 or len(args) != 2:
            raise TypeError(f"only `X | None` unions are supported, not {tp}")
        base = _type_schema(inner[0])
        if "enum" in base:
            return {"enum": [*base["enum"], None]}
        if base.get("type") in _PRIMITIVES.values():
            return {"type": [base["type"], "null"]}
        return {"anyOf": [base, {"type": "null"}]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0])}
    if tp in _PRIMITIVES:
        return {"type": _PRIMITIVES[tp]}
    if isinstance(tp, type) and (issubclass(tp, Enum) or dataclasses.is_dataclass(tp)):
        return {"$ref": f"#/$defs/{tp.__name__}"}
    raise TypeError(f"no JSON Schema for {tp!r}")


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def schema_text(schema: dict[str, Any] | None = None) -> str:
    return json.dumps(schema or build_schema(), indent=2, ensure_ascii=False) + "\n"


# --- JSON Schema -> TypeScript ---------------------------------------------------------------------------
_TS_HEADER = """\
/*
 * The wire types of GET qcs-jupyter/status (and POST qcs-jupyter/refresh), and
 * of POST qcs-jupyter/check.
 *
 * Generated from qcs_jupyter/credentials/status.schema.json, itself generated
 * from qcs_jupyter/credentials/contract.py, by
 * `python -m qcs_jupyter.credentials.schemagen`. Do not edit: change
 * contract.py and run the command again (a test fails on any drift).
 */
"""


def typescript_text(schema: dict[str, Any]) -> str:
    """TypeScript for every ``$defs`` entry: a string union (+ the list of its values) per enum, an interface per object."""
    enums = {name for name, d in schema["$defs"].items() if "oneOf" in d}
    parts = [_TS_HEADER]
    for name, definition in schema["$defs"].items():
        parts.append(_ts_enum(name, definition) if name in enums else _ts_interface(name, definition, enums))
    return "\n".join(parts)


def _ts_enum(name: str, definition: dict[str, Any]) -> str:
    values = [f"'{v['const']}'" for v in definition["oneOf"]]
    lines = _comment(definition["description"], "", items=[(v["const"], v["description"]) for v in definition["oneOf"]])
    union = f"export type {name} = {' | '.join(values)};"
    if len(union) <= 80:
        lines.append(union)
    else:  # prettier's layout for a union that does not fit on one line
        lines += [f"export type {name} =", *(f"  | {v}" for v in values)]
        lines[-1] += ";"
    lines += ["", *_comment(f"Every {name}, in the contract's order.", "")]
    array = f"export const {_list_name(name)}: readonly {name}[] = [{', '.join(values)}];"
    if len(array) <= 80:
        lines.append(array)
    else:
        lines += [f"export const {_list_name(name)}: readonly {name}[] = [", *(f"  {v}," for v in values), "];"]
        lines[-2] = lines[-2].rstrip(",")
    return "\n".join(lines) + "\n"


def _ts_interface(name: str, definition: dict[str, Any], enums: set[str]) -> str:
    lines = [*_comment(definition["description"], ""), f"export interface I{name} {{"]
    for prop, schema in definition["properties"].items():
        lines += _comment(schema["description"], "  ")
        lines.append(f"  {prop}: {_ts_type(schema, enums)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _ts_type(schema: dict[str, Any], enums: set[str]) -> str:
    if "$ref" in schema:
        target = schema["$ref"].rsplit("/", 1)[1]
        return target if target in enums else f"I{target}"
    if "anyOf" in schema:
        return " | ".join(_ts_type(s, enums) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join("null" if v is None else f"'{v}'" for v in schema["enum"])
    kind = schema["type"]
    if isinstance(kind, list):
        return " | ".join(_ts_type({"type": k}, enums) for k in kind)
    if kind == "array":
        item = _ts_type(schema["items"], enums)
        return f"{item}[]" if item.isidentifier() else f"({item})[]"
    return {"string": "string", "integer": "number", "number": "number", "boolean": "boolean", "null": "null"}[kind]


def _list_name(enum_name: str) -> str:
    """``QCSProblemCode`` -> ``QCS_PROBLEM_CODES``."""
    words = re.findall(r"[A-Z][a-z0-9]*", enum_name.removeprefix("QCS"))
    last = words[-1]
    words[-1] = last[:-1] + "ies" if last.endswith("y") else last + "s"
    return "_".join(["QCS", *(w.upper() for w in words)])


def _comment(text: str, indent: str, items: list[tuple[str, str]] | None = None) -> list[str]:
    """A JSDoc comment wrapped at 80 columns (prettier leaves comments as they are), with an optional list."""
    width = 80 - len(indent) - 3
    body = textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False)
    if not items and len(body) == 1 and len(f"{indent}/** {body[0]} */") <= 80:
        return [f"{indent}/** {body[0]} */"]
    if items:
        body.append("")
        for key, desc in items:
            body += textwrap.wrap(
                f"- `{key}`: {desc}",
                width=width,
                subsequent_indent="  ",
                break_long_words=False,
                break_on_hyphens=False,
            )
    return [f"{indent}/**", *(f"{indent} * {line}".rstrip() for line in body), f"{indent} */"]


# --- command -----------------------------------------------------------------------------------------------
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def outputs(root: Path | None = None) -> dict[Path, str]:
    """What the committed files must hold: the schema from the Python types, the TypeScript from that schema."""
    root = root or repo_root()
    schema = build_schema()
    return {SCHEMA_PATH: schema_text(schema), root / TS_RELATIVE: typescript_text(schema)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qcs_jupyter.credentials.schemagen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if a file differs")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'out of date' if args.check else 'wrote'}: {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
