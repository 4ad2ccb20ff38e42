//! {{name}}: a Maestro reconcile hook. It holds bundles back on clusters labelled
//! `paused=true`, asking again every minute. Edit `before_apply` to make it yours.

use maestro_plugin::prelude::*;

pub struct {{Type}};

impl ReconcileHook for {{Type}} {
    type Settings = ();

    fn before_apply(ctx: &Context, bundle: Bundle, _settings: &()) -> BeforeApply {
        if ctx.label("paused") == Some("true") {
            return BeforeApply::Requeue(60_000);
        }
        BeforeApply::Proceed(bundle.manifests)
    }
}

maestro_plugin::export_reconcile_hook!({{Type}});

#[cfg(test)]
mod tests {
    use maestro_plugin::testing;

    use super::*;

    #[test]
    fn a_paused_cluster_waits_and_others_proceed() {
        let bundle = testing::bundle(&[json!({"kind": "ConfigMap"})], 0);
        let paused = testing::context().with_label("paused", "true");
        assert_eq!(testing::before_apply::<{{Type}}>(paused, &bundle, &json!(null)), BeforeApply::Requeue(60_000));
        let outcome = testing::before_apply::<{{Type}}>(testing::context(), &bundle, &json!(null));
        assert!(matches!(outcome, BeforeApply::Proceed(_)));
    }
}
