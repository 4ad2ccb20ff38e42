# world: status-feedback
"""Status feedback in Python: rollout health of a Deployment from its status counts.

Built with componentize-py against wit/ (world `status-feedback`).
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.feedback import FeedbackValue, Health, HealthState, Report, Value_Integer


def _count(status: dict, key: str) -> int:
    value = status.get(key, 0)
    return value if isinstance(value, int) else 0


class Feedback(exports.Feedback):
    def validate_settings(self, settings: str) -> None:
        return None

    def status(self, ctx, live: str, desired: str, settings: str) -> Report:
        try:
            obj = json.loads(live)
        except ValueError as err:
            raise Err(f"live object is not JSON: {err}")
        if obj.get("kind") != "Deployment":
            return Report(values=[], health=None)
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        want = spec.get("replicas", 1)
        updated, available = _count(status, "updatedReplicas"), _count(status, "availableReplicas")
        values = [
            FeedbackValue(name="replicas", value=Value_Integer(want)),
            FeedbackValue(name="updatedReplicas", value=Value_Integer(updated)),
            FeedbackValue(name="availableReplicas", value=Value_Integer(available)),
        ]
        observed = _count(status, "observedGeneration") >= _count(obj.get("metadata") or {}, "generation")
        if not observed or updated < want:
            health = Health(state=HealthState.PROGRESSING, message=f"{updated} of {want} replicas updated")
        elif available < want:
            health = Health(state=HealthState.DEGRADED, message=f"{available} of {want} replicas available")
        else:
            health = Health(state=HealthState.HEALTHY, message=f"{available} of {want} replicas available")
        return Report(values=values, health=health)
