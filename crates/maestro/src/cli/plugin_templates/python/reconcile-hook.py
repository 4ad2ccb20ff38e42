# world: reconcile-hook
"""{{name}}: a Maestro reconcile hook in Python. It holds bundles back on clusters labelled
`paused=true`, asking again every minute. Edit `before_apply` to make it yours."""

from wit_world import exports
from wit_world.exports.hooks import (
    BeforeApplyOutcome_Proceed,
    BeforeApplyOutcome_Requeue,
    BeforeDeleteOutcome_Proceed,
)

REQUEUE_MS = 60_000


class Hooks(exports.Hooks):
    def validate_settings(self, settings: str) -> None:
        return None

    def before_apply(self, ctx, bundle, settings: str):
        if dict(ctx.consumer_labels).get("paused") == "true":
            return BeforeApplyOutcome_Requeue(REQUEUE_MS)
        return BeforeApplyOutcome_Proceed(bundle.manifests)

    def after_apply(self, ctx, bundle, results, settings: str) -> None:
        return None

    def before_delete(self, ctx, bundle, settings: str):
        return BeforeDeleteOutcome_Proceed()
