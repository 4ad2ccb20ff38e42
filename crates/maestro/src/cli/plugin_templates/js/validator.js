// world: validator
// {{name}}: a Maestro validator in JavaScript. It refuses manifests without the label named
// in its settings ({"label": "owner"} by default). Edit `validate` to make it yours.

function label(settings) {
  const parsed = settings.trim() === '' ? null : JSON.parse(settings);
  const name = parsed && parsed.label !== undefined ? parsed.label : 'owner';
  if (typeof name !== 'string' || name === '') throw new Error('label must be a non-empty string');
  return name;
}

export const validate = {
  validateSettings(settings) {
    try {
      label(settings);
    } catch (err) {
      throw String(err.message || err);
    }
  },

  validate(_ctx, op, manifest, settings) {
    let name;
    let labels;
    try {
      name = label(settings);
      labels = (JSON.parse(manifest).metadata || {}).labels || {};
    } catch (err) {
      return { tag: 'deny', val: [{ path: 'settings', message: String(err.message || err) }] };
    }
    if (op === 'delete' || name in labels) return { tag: 'allow' };
    return { tag: 'deny', val: [{ path: `metadata.labels.${name}`, message: `label ${name} is required` }] };
  },
};
