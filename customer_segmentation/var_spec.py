"""The spec of the project's dbt vars, read from macros/var_spec.sql, the one place it lives.

dbt checks every var against it before any model runs (macros/validated_var.sql); this module
gives the Python side the same spec: the defaults and allowed values the package uses, the same
checks with the same messages (`check`), and the docs table (`markdown`, written to
docs/vars.md by ``python -m customer_segmentation.var_spec --markdown > docs/vars.md``).
The spec is a YAML block inside a dbt macro because dbt's Jinja cannot read files; the package
finds the macro in the project folder (it is installed editable, `pip install -e .`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import numbers
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

SPEC_FILE = Path(__file__).resolve().parent.parent / "macros" / "var_spec.sql"
DOCS_FILE = SPEC_FILE.parent.parent / "docs" / "vars.md"
_BLOCK = re.compile(r"\{%-?\s*set spec\s*-?%\}(?P<yaml>.*?)\{%-?\s*endset\s*-?%\}", re.DOTALL)


def load_spec(path: Path = SPEC_FILE) -> dict[str, dict[str, Any]]:
    """The spec: var name -> entry (default, type, ...), in the file's order."""
    match = _BLOCK.search(path.read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f"{path}: no `{{% set spec %}} ... {{% endset %}}` block")
    text = match["yaml"]
    # dbt renders the block as a Jinja template before parsing it: it must be plain YAML.
    if any(marker in text for marker in ("{{", "{%", "{#")):
        raise ValueError(f"{path}: the spec block must not hold Jinja")
    spec = yaml.safe_load(text)
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: the spec block is not a YAML mapping")
    return spec


SPEC = load_spec()


def default(name: str) -> Any:
    """The var's default (a fresh copy of a list, so callers cannot change the spec)."""
    value = SPEC[name]["default"]
    return list(value) if isinstance(value, list) else value


def _either(items: Sequence[str]) -> str:
    return ", ".join(items[:-1]) + " or " + items[-1] if len(items) > 1 else "".join(items)


def _shown(value: object) -> str:
    """The value as the dbt message shows it (JSON; dates and other objects as their text)."""

    def safe(v: object) -> object:
        if isinstance(v, Mapping):
            return {str(k): safe(x) for k, x in v.items()}
        if v is None or isinstance(v, str | bool | numbers.Number):
            return v
        if isinstance(v, Sequence):
            return [safe(x) for x in v]
        return str(v)

    return json.dumps(safe(value))


def _is_integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_list(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _date_problem(entry: Mapping[str, Any], value: object) -> str | None:
    lo, hi = entry["range"]
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        null = f" or null ({entry['null_means']})" if "null_means" in entry else ""
        return f"must be an ISO date (YYYY-MM-DD){null}"
    if value < lo or value > hi:
        return f"must be from {lo} to {hi}"
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return "is not a valid calendar date"
    return None


def problem(name: str, value: object, values: Mapping[str, object] | None = None) -> str | None:
    """What is wrong with `value` for var `name` (as validated_var words it), or None.

    `values` holds the other vars, for the rules between vars (segment_k_max >= segment_k_min);
    a var missing from it counts as its default.
    """
    entry = SPEC[name]
    kind = entry["type"]
    lo, hi = entry.get("range") or (None, None)
    choices = entry.get("choices") or []
    item = entry.get("item")
    if value is None and "null_means" in entry:
        return None
    if kind == "path":
        if not isinstance(value, str) or not value.strip() or "\x00" in value or "\n" in value:
            return f"must be a non-empty path or glob of {_either(entry['suffixes'])} files"
    elif kind == "enum":
        if not isinstance(value, str) or value not in choices:
            return "must be " + _either([f"'{c}'" for c in choices])
    elif kind == "codes":
        if not _is_list(value):
            return f"must be a list of {item}s, e.g. {entry['example']}"
        for code in value:
            if not isinstance(code, str) or not re.fullmatch(entry["pattern"], code):
                return f"entry {_shown(code)} is not a {item} ({entry['pattern_help']})"
    elif kind == "number":
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
            or not lo <= value <= hi
        ):
            return f"must be a finite number from {lo} to {hi}"
    elif kind == "boolean":
        if not isinstance(value, bool):
            return "must be true or false"
    elif kind == "date":
        if isinstance(value, dt.date):
            value = value.isoformat()
        found = _date_problem(entry, value)
        other = entry.get("at_least")
        if found is None and other is not None:
            floor = (values or {}).get(other, default(other))
            floor = floor.isoformat() if isinstance(floor, dt.date) else floor
            iso = isinstance(floor, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", floor)
            if iso and value < floor:
                return f"must be at least {other} ({floor})"
        return found
    elif kind == "integer":
        if not _is_integer(value) or not lo <= value <= hi:
            null = f"null ({entry['null_means']}) or " if "null_means" in entry else ""
            return f"must be {null}a whole number from {lo} to {hi}"
        other = entry.get("at_least")
        if other is not None:
            floor = (values or {}).get(other, default(other))
            if _is_integer(floor) and value < floor:
                return f"must be at least {other} ({floor})"
    elif kind == "choices":
        if not _is_list(value) or not value:
            return f"must be a non-empty list of {item}s, from {', '.join(choices)}"
        for choice in value:
            if not isinstance(choice, str) or choice not in choices:
                return f"entry {_shown(choice)} is not one of {', '.join(choices)}"
        if len(set(value)) != len(value):
            return f"must not repeat a {item}"
    else:
        raise ValueError(f"var {name!r} has unknown type {kind!r} in {SPEC_FILE}")
    return None


def check(name: str, value: object, values: Mapping[str, object] | None = None) -> object:
    """The value when it meets the spec; else ValueError with validated_var's message."""
    found = problem(name, value, values)
    if found is not None:
        raise ValueError(f"Invalid value for dbt var '{name}': {_shown(value)} {found}.")
    return value


# --------------------------------------------------------------------------- docs


def _code(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def allowed(entry: Mapping[str, Any]) -> str:
    """The allowed values of a spec entry, in words, for the docs table."""
    kind = entry["type"]
    lo, hi = entry.get("range") or (None, None)
    ticked = [f"`{c}`" for c in entry.get("choices") or []]
    if kind == "path":
        text = f"a path or glob of {_either([f'`{s}`' for s in entry['suffixes']])} files"
    elif kind == "enum":
        text = _either(ticked)
    elif kind == "codes":
        text = f"a list of {entry['item']}s: {entry['pattern_help']}"
    elif kind == "number":
        text = f"a finite number from {lo} to {hi}"
    elif kind == "boolean":
        text = "`true` or `false`"
    elif kind == "date":
        text = f"an ISO date (YYYY-MM-DD) from {lo} to {hi}"
        if entry.get("at_least"):
            text += f", at least `{entry['at_least']}`"
    elif kind == "integer":
        text = f"a whole number from {lo} to {hi}"
        if entry.get("at_least"):
            text += f", at least `{entry['at_least']}`"
    elif kind == "choices":
        text = f"a non-empty list, without repeats, of {', '.join(ticked)}"
    else:
        raise ValueError(f"unknown type {kind!r} in {SPEC_FILE}")
    return text + (", or null" if "null_means" in entry else "")


def markdown() -> str:
    """docs/vars.md: the vars table, generated from the spec."""
    lines = [
        "<!-- Generated from macros/var_spec.sql by "
        "`python -m customer_segmentation.var_spec --markdown > docs/vars.md`; do not edit. -->",
        "",
        "# dbt vars",
        "",
        "Set them with `--vars`, e.g. `dbt build --vars '{as_of_date: 2011-06-01, segment_k: 5}'`.",
        "Every var is checked before any model runs (`macros/validated_var.sql`, against the spec",
        "in `macros/var_spec.sql`): a bad value fails the build with a message that names the var,",
        "and a name `--vars` gives that is not one of these (a misspelling) fails it listing the",
        "known ones. No var is pasted into SQL unchecked.",
        "",
        "A new var needs its entry in `macros/var_spec.sql` and its default in `dbt_project.yml`",
        "(`tests/pytest/test_var_spec.py` fails when they differ or when this page is stale).",
        "",
        "| var | default | meaning | allowed values |",
        "|---|---|---|---|",
    ]
    for name, entry in SPEC.items():
        value = entry["default"]
        shown = f"`{_code(value)}`"
        if value is None and "null_means" in entry:
            shown = f"null ({entry['null_means']})"
        help_text = " ".join(str(entry["help"]).split())
        lines.append(f"| `{name}` | {shown} | {help_text} | {allowed(entry)} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print docs/vars.md")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown())
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
