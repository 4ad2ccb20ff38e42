# world: status-feedback
"""{{name}}: a Maestro status-feedback plugin in Python. It reports an object's Ready
condition as health. Edit `status` to make it yours."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.feedback import FeedbackValue, Health, HealthState, Report, Value_Boolean


class Feedback(exports.Feedback):
    def validate_settings(self, settings: str) -> None:
        return None

    def status(self, ctx, live: str, desired: str, settings: str) -> Report:
        try:
            obj = json.loads(live)
        except ValueError as err:
            raise Err(f"live object is not JSON: {err}")
        conditions = (obj.get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        if ready is None:
            return Report(values=[], health=None)
        is_ready = ready.get("status") == "True"
        state = HealthState.HEALTHY if is_ready else HealthState.PROGRESSING
        return Report(
            values=[FeedbackValue(name="ready", value=Value_Boolean(is_ready))],
            health=Health(state=state, message=ready.get("message", "")),
        )
