"""Checks of the JSON Schema subset the catalogue accepts for payloads and ``$defs``.

Only keywords that the generated pydantic models enforce at run time are accepted, so a
schema never promises more than the code checks (``uniqueItems``, ``oneOf``, ``not``,
``if``/``then``, ``patternProperties``, unknown formats and remote ``$ref``s are refused).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic_core import SchemaError, SchemaValidator, core_schema

from .errors import Path, suggest
from .names import check_property_name

__all__ = ["FORMATS", "KEYWORDS", "SchemaChecker", "ref_target", "scalar_type_of"]

# format -> what the generated model validates with
FORMATS = {
    "date": "datetime.date",
    "date-time": "pydantic.AwareDatetime (an offset is required)",
    "duration": "datetime.timedelta (ISO 8601)",
    "email": "pydantic.EmailStr",
    "hostname": "a hostname pattern",
    "ipv4": "ipaddress.IPv4Address",
    "ipv6": "ipaddress.IPv6Address",
    "time": "datetime.time",
    "uri": "pydantic.AnyUrl",
    "uuid": "uuid.UUID",
}
TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")
KEYWORDS = frozenset(
    {
        "$ref", "additionalProperties", "anyOf", "const", "default", "description", "enum",
        "examples", "exclusiveMaximum", "exclusiveMinimum", "format", "items", "maxItems",
        "maxLength", "maximum", "minItems", "minLength", "minimum", "multipleOf", "pattern",
        "properties", "required", "title", "type",
    }
)  # fmt: skip
_REFUSED = {
    "oneOf": "use anyOf (the generated models do not enforce exactly-one)",
    "allOf": "declare the merged object in $defs instead",
    "uniqueItems": "the generated models do not enforce it",
    "patternProperties": "use additionalProperties with a schema",
    "not": "the generated models do not enforce it",
    "if": "the generated models do not enforce it",
    "$defs": "declare shared definitions in the domain's $defs",
    "definitions": "declare shared definitions in the domain's $defs",
    "$schema": "the catalogue fixes the dialect (a JSON Schema 2020-12 subset)",
    "$id": "schemas are identified by their place in the catalogue",
    "nullable": 'write type: [string, "null"] or anyOf with {type: "null"}',
}
_REF = re.compile(r"#/\$defs/([A-Za-z0-9]+)")
_REF_SIBLINGS = {"$ref", "description", "title"}
_NUMERIC = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems")
_PATTERN_MAX = 200

ErrorSink = Callable[[Path, str], None]


def ref_target(ref: object) -> str | None:
    """``"#/$defs/Money"`` -> ``"Money"``; None when the reference has another form."""
    if isinstance(ref, str):
        match = _REF.fullmatch(ref)
        if match:
            return match[1]
    return None


def scalar_type_of(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> str | None:
    """The single JSON type of ``schema`` following one level of ``$ref``, else None."""
    target = ref_target(schema.get("$ref"))
    if target is not None:
        resolved = defs.get(target)
        return scalar_type_of(resolved, {}) if isinstance(resolved, Mapping) else None
    kind = schema.get("type")
    if isinstance(kind, str):
        return kind
    if "enum" in schema and all(isinstance(v, str) for v in schema["enum"] or [None]):
        return "string"
    return None


class SchemaChecker:
    """Walks one schema, reporting each problem through ``report(path, message)``."""

    def __init__(
        self, defs: Mapping[str, Any], report: ErrorSink, *, resolve_refs: bool = True
    ) -> None:
        self._defs = defs
        self._report = report
        self._resolve_refs = resolve_refs  # False when the domain's $defs are unknown

    def check_payload(self, schema: object, path: Path) -> None:
        """An event payload: an object schema, so that it becomes one model class."""
        if isinstance(schema, dict) and schema.get("type") != "object":
            if "$ref" in schema:
                self._report(
                    path,
                    "a payload must be an inline object schema (type: object); "
                    "wrap the $ref in a property or move its fields here",
                )
            else:
                self._report((*path, "type"), 'a payload must have "type: object"')
        self.check(schema, path)

    def check(self, schema: object, path: Path) -> None:
        if not isinstance(schema, dict):
            self._report(path, "expected a JSON Schema mapping")
            return
        for key in schema:
            if key in _REFUSED:
                self._report(
                    (*path, key), f'unsupported JSON Schema keyword "{key}": {_REFUSED[key]}'
                )
            elif key not in KEYWORDS:
                self._report(
                    (*path, key), f'unknown JSON Schema keyword "{key}"{suggest(key, KEYWORDS)}'
                )
        if "$ref" in schema:
            self._check_ref(schema, path)
            return
        types = self._check_type(schema, path)
        self._check_format(schema, path, types)
        self._check_enum(schema, path)
        self._check_numbers(schema, path)
        self._check_pattern(schema, path)
        self._check_object(schema, path)
        if "items" in schema:
            self.check(schema["items"], (*path, "items"))
        if "anyOf" in schema:
            options = schema["anyOf"]
            if not isinstance(options, list) or not options:
                self._report((*path, "anyOf"), "anyOf must be a non-empty list of schemas")
            else:
                for index, option in enumerate(options):
                    self.check(option, (*path, "anyOf", index))
        for key in ("description", "title"):
            if key in schema and not isinstance(schema[key], str):
                self._report((*path, key), f"{key} must be a string")
        if "examples" in schema and not isinstance(schema["examples"], list):
            self._report((*path, "examples"), "examples must be a list")

    def _check_ref(self, schema: dict[str, Any], path: Path) -> None:
        ref = schema["$ref"]
        target = ref_target(ref)
        if target is None:
            self._report(
                (*path, "$ref"),
                f'unresolvable $ref "{ref}": only references of the form "#/$defs/Name" '
                "to this domain's $defs are allowed",
            )
        elif target not in self._defs and self._resolve_refs:
            known = [f"#/$defs/{name}" for name in self._defs]
            self._report(
                (*path, "$ref"),
                f'unresolvable $ref "{ref}": no "{target}" in this domain\'s $defs'
                f"{suggest(str(ref), known)}",
            )
        extra = sorted(set(schema) - _REF_SIBLINGS)
        if extra:
            self._report(
                (*path, extra[0]),
                f'"{extra[0]}" beside "$ref" is not supported; put it in the referenced schema',
            )

    def _check_type(self, schema: dict[str, Any], path: Path) -> set[str]:
        if "type" not in schema:
            return set()
        kind = schema["type"]
        kinds = kind if isinstance(kind, list) else [kind]
        if not kinds or not all(isinstance(k, str) for k in kinds):
            self._report((*path, "type"), "type must be a type name or a list of them")
            return set()
        for name in kinds:
            if name not in TYPES:
                self._report((*path, "type"), f'unknown type "{name}"{suggest(name, TYPES)}')
        if len(set(kinds)) != len(kinds):
            self._report((*path, "type"), "type lists a type twice")
        return set(kinds)

    def _check_format(self, schema: dict[str, Any], path: Path, types: set[str]) -> None:
        if "format" not in schema:
            return
        fmt = schema["format"]
        if not isinstance(fmt, str) or fmt not in FORMATS:
            allowed = ", ".join(sorted(FORMATS))
            self._report(
                (*path, "format"),
                f'unsupported format "{fmt}"{suggest(str(fmt), FORMATS, 0.75)}: it would not be '
                f"validated at run time; supported: {allowed}",
            )
        elif "string" not in types:
            self._report((*path, "format"), f'format "{fmt}" needs "type: string"')

    def _check_enum(self, schema: dict[str, Any], path: Path) -> None:
        if "enum" in schema:
            values = schema["enum"]
            if not isinstance(values, list) or not values:
                self._report((*path, "enum"), "enum must be a non-empty list")
            elif not all(isinstance(v, str) and v for v in values):
                self._report(
                    (*path, "enum"),
                    "enum values must be non-empty strings (they become Literal values)",
                )
            elif len(set(values)) != len(values):
                self._report((*path, "enum"), "enum lists a value twice")
        if "const" in schema and not isinstance(schema["const"], str | int | float | bool):
            self._report((*path, "const"), "const must be a string, number or boolean")

    def _check_numbers(self, schema: dict[str, Any], path: Path) -> None:
        for key in _NUMERIC:
            if key in schema:
                value = schema[key]
                finite = isinstance(value, int | float) and math.isfinite(value)
                if isinstance(value, bool) or not finite:
                    self._report((*path, key), f"{key} must be a number")
                elif key == "multipleOf" and value <= 0:
                    self._report((*path, key), "multipleOf must be greater than 0")
        for key in _COUNTS:
            if key in schema:
                value = schema[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    self._report((*path, key), f"{key} must be a non-negative integer")
        for low, high in (("minLength", "maxLength"), ("minItems", "maxItems")):
            a, b = schema.get(low), schema.get(high)
            if isinstance(a, int) and isinstance(b, int) and a > b:
                self._report((*path, low), f"{low} ({a}) is greater than {high} ({b})")
        a, b = schema.get("minimum"), schema.get("maximum")
        if isinstance(a, int | float) and isinstance(b, int | float) and a > b:
            self._report((*path, "minimum"), f"minimum ({a}) is greater than maximum ({b})")

    def _check_pattern(self, schema: dict[str, Any], path: Path) -> None:
        if "pattern" not in schema:
            return
        pattern = schema["pattern"]
        if not isinstance(pattern, str):
            self._report((*path, "pattern"), "pattern must be a string")
            return
        if len(pattern) > _PATTERN_MAX:
            self._report((*path, "pattern"), f"pattern is longer than {_PATTERN_MAX} characters")
            return
        try:
            SchemaValidator(core_schema.str_schema(pattern=pattern))
        except SchemaError as exc:
            reason = str(exc).strip().splitlines()[-1].strip().removeprefix("error: ")
            self._report(
                (*path, "pattern"),
                f"pattern is not a valid regular expression for pydantic (Rust regex): {reason}",
            )

    def _check_object(self, schema: dict[str, Any], path: Path) -> None:
        properties = schema.get("properties", {})
        if not isinstance(properties, dict):
            self._report((*path, "properties"), "properties must be a mapping")
            properties = {}
        for name, sub in properties.items():
            problem = check_property_name(str(name))
            if problem:
                self._report((*path, "properties", name), problem)
            self.check(sub, (*path, "properties", name))
        if "required" in schema:
            required = schema["required"]
            if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
                self._report((*path, "required"), "required must be a list of property names")
            else:
                seen: set[str] = set()
                for index, name in enumerate(required):
                    if name in seen:
                        self._report((*path, "required", index), f'"{name}" is listed twice')
                    elif name not in properties:
                        self._report(
                            (*path, "required", index),
                            f'required property "{name}" is not in properties'
                            f"{suggest(name, properties)}",
                        )
                    seen.add(name)
        if "additionalProperties" in schema:
            extra = schema["additionalProperties"]
            if isinstance(extra, dict):
                self.check(extra, (*path, "additionalProperties"))
            elif not isinstance(extra, bool):
                self._report(
                    (*path, "additionalProperties"),
                    "additionalProperties must be a boolean or a schema",
                )
