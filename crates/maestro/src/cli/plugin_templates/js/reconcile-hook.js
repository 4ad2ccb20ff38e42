// world: reconcile-hook
// {{name}}: a Maestro reconcile hook in JavaScript. It holds bundles back on clusters
// labelled `paused=true`, asking again every minute. Edit `beforeApply` to make it yours.

const REQUEUE_MS = 60000;

export const hooks = {
  validateSettings(_settings) {},

  beforeApply(ctx, bundle, _settings) {
    const paused = ctx.consumerLabels.some(([k, v]) => k === 'paused' && v === 'true');
    if (paused) return { tag: 'requeue', val: REQUEUE_MS };
    return { tag: 'proceed', val: bundle.manifests };
  },

  afterApply(_ctx, _bundle, _results, _settings) {},

  beforeDelete(_ctx, _bundle, _settings) {
    return { tag: 'proceed' };
  },
};
