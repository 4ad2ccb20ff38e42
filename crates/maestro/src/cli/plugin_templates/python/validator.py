# world: validator
"""{{name}}: a Maestro validator in Python. It refuses manifests without the label named in
its settings ({"label": "owner"} by default). Edit `validate` to make it yours."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.validate import Verdict_Allow, Verdict_Deny
from wit_world.imports.types import Operation, Violation


def _label(settings: str) -> str:
    parsed = json.loads(settings) if settings.strip() not in ("", "null") else {}
    label = parsed.get("label", "owner") if isinstance(parsed, dict) else None
    if not isinstance(label, str) or not label:
        raise ValueError("label must be a non-empty string")
    return label


class Validate(exports.Validate):
    def validate_settings(self, settings: str) -> None:
        try:
            _label(settings)
        except ValueError as err:
            raise Err(str(err))

    def validate(self, ctx, op, manifest: str, settings: str):
        try:
            label = _label(settings)
            labels = (json.loads(manifest).get("metadata") or {}).get("labels") or {}
        except ValueError as err:
            return Verdict_Deny([Violation(path="settings", message=str(err))])
        if op == Operation.DELETE or label in labels:
            return Verdict_Allow()
        return Verdict_Deny([Violation(path=f"metadata.labels.{label}", message=f"label {label} is required")])
