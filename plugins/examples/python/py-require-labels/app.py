# world: validator
"""Validator in Python: manifests must carry the labels a policy names.

Settings: {"labels": ["team", "env"]}. Built with componentize-py against wit/ (world
`validator`); it needs nothing from Maestro but the WIT.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.validate import Verdict_Allow, Verdict_Deny
from wit_world.imports import host
from wit_world.imports.types import LogLevel, Operation, Violation


def _required(settings: str) -> list:
    parsed = json.loads(settings) if settings.strip() else {}
    if not isinstance(parsed, dict):
        raise ValueError("settings must be an object")
    labels = parsed.get("labels", [])
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        raise ValueError("labels: give a non-empty list of label names")
    return labels


class Validate(exports.Validate):
    def validate_settings(self, settings: str) -> None:
        try:
            _required(settings)
        except ValueError as err:
            raise Err(str(err))

    def validate(self, ctx, op, manifest: str, settings: str):
        if op == Operation.DELETE:
            return Verdict_Allow()
        try:
            required = _required(settings)
            obj = json.loads(manifest)
        except ValueError as err:
            return Verdict_Deny([Violation(path="settings", message=str(err))])
        labels = (obj.get("metadata") or {}).get("labels") or {}
        missing = [name for name in required if name not in labels]
        if not missing:
            return Verdict_Allow()
        host.log(LogLevel.DEBUG, f"{ctx.consumer}: missing labels {missing}")
        return Verdict_Deny([Violation(path=f"metadata.labels.{name}", message=f"label {name} is required") for name in missing])
