"""Side-by-side comparison of record documents: which fields, parameters and outputs differ."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .parameters import display, parse_parameters
from .records import tag_list

#: Fields shown one per row, in this order, with how to show them.
FIELDS: tuple[tuple[str, str], ...] = (
    ("timestamp", "Timestamp"),
    ("user", "User"),
    ("reason", "Reason"),
    ("outcome", "Outcome"),
    ("tags", "Tags"),
    ("duration", "Duration (s)"),
    ("main_file", "Main file"),
    ("version", "Version"),
    ("repository", "Repository"),
    ("executable", "Executable"),
    ("script_arguments", "Script arguments"),
    ("launch_mode", "Launch mode"),
    ("datastore", "Datastore"),
    ("input_datastore", "Input datastore"),
    ("diff", "Code diff"),
    ("repeats", "Repeats"),
)


@dataclass
class Row:
    name: str
    values: list[str]

    @property
    def differs(self) -> bool:
        return len(set(self.values)) > 1


@dataclass
class Comparison:
    labels: list[str]
    fields: list[Row] = field(default_factory=list)
    parameters: list[Row] = field(default_factory=list)
    dependencies: list[Row] = field(default_factory=list)
    outputs: list[Row] = field(default_factory=list)  # values are digests ("" when absent)
    inputs: list[Row] = field(default_factory=list)

    @property
    def difference_count(self) -> int:
        return sum(r.differs for rows in (self.fields, self.parameters, self.dependencies,
                                          self.outputs, self.inputs) for r in rows)


def _text(name: str, value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return ""
    if name == "tags":
        return ", ".join(sorted(tag_list(value))) if isinstance(value, (str, list)) else ""
    if name == "executable" and isinstance(value, dict):
        return " ".join(str(value.get(k) or "") for k in ("name", "version")).strip() + (
            f" ({value['path']})" if value.get("path") else "")
    if name == "repository" and isinstance(value, dict):
        return str(value.get("url") or "") + (f" [{value['type']}]" if value.get("type") else "")
    if name in ("launch_mode", "datastore", "input_datastore") and isinstance(value, dict):
        params = value.get("parameters")
        suffix = f" {json.dumps(params, sort_keys=True)}" if params else ""
        return f"{value.get('type') or ''}{suffix}"
    if name == "duration" and isinstance(value, (int, float)):
        return f"{value:.3f}"
    return display(value)


def _keyed(docs: list[dict], key: str, name_of, value_of) -> list[Row]:
    """Rows pairing list entries (dependencies, data files) across records by a name."""
    per_doc: list[dict[str, str]] = []
    for doc in docs:
        entries = doc.get(key)
        if isinstance(entries, str):  # old clients sent JSON text
            try:
                entries = json.loads(entries)
            except ValueError:
                entries = []
        entries = entries if isinstance(entries, list) else []
        named: dict[str, str] = {}
        for entry in (e for e in entries if isinstance(e, dict)):
            name = str(name_of(entry))
            n = 2
            while name in named:  # the same path twice in one record: keep both
                name = f"{name_of(entry)} #{n}"
                n += 1
            named[name] = value_of(entry)
        per_doc.append(named)
    names = sorted(set().union(*per_doc)) if per_doc else []
    return [Row(n, [d.get(n, "") for d in per_doc]) for n in names]


def _data_name(entry: dict) -> str:
    return entry.get("path") or ""


def _digest(entry: dict) -> str:
    return str(entry.get("digest") or "?")


def _dependency_version(entry: dict) -> str:
    version = str(entry.get("version") or "")
    return version + (" (modified)" if entry.get("diff") else "")


def compare(docs: list[dict]) -> Comparison:
    """Compare record documents (two or more) field by field."""
    result = Comparison(labels=[str(d.get("label", "")) for d in docs])
    result.fields = [Row(title, [_text(name, d.get(name)) for d in docs])
                     for name, title in FIELDS]
    flats = [parse_parameters(d.get("parameters")).flat for d in docs]
    keys = sorted(set().union(*flats)) if flats else []
    result.parameters = [Row(k, [display(f[k]) if k in f else "" for f in flats]) for k in keys]
    result.dependencies = _keyed(docs, "dependencies", lambda e: e.get("name") or e.get("path"),
                                 _dependency_version)
    result.outputs = _keyed(docs, "output_data", _data_name, _digest)
    result.inputs = _keyed(docs, "input_data", _data_name, _digest)
    return result
