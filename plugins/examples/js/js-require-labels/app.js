// world: validator
// Validator in JavaScript: manifests must carry the labels a policy names.
//
// Settings: {"labels": ["team", "env"]}. Built with componentize-js against wit/ (world
// `validator`); it needs nothing from Maestro but the WIT.
import { log } from 'maestro:plugin/host@0.1.0';

function required(settings) {
  const parsed = settings.trim() === '' ? {} : JSON.parse(settings);
  const labels = parsed && parsed.labels;
  if (!Array.isArray(labels) || labels.length === 0 || !labels.every((l) => typeof l === 'string')) {
    throw new Error('labels: give a non-empty list of label names');
  }
  return labels;
}

export const validate = {
  validateSettings(settings) {
    try {
      required(settings);
    } catch (err) {
      // A thrown value becomes the `err` of `result<_, string>`.
      throw String(err.message || err);
    }
  },

  validate(ctx, op, manifest, settings) {
    if (op === 'delete') return { tag: 'allow' };
    let labels;
    let names;
    try {
      names = required(settings);
      labels = (JSON.parse(manifest).metadata || {}).labels || {};
    } catch (err) {
      return { tag: 'deny', val: [{ path: 'settings', message: String(err.message || err) }] };
    }
    const missing = names.filter((name) => !(name in labels));
    if (missing.length === 0) return { tag: 'allow' };
    log('debug', `${ctx.consumer}: missing labels ${missing.join(', ')}`);
    return {
      tag: 'deny',
      val: missing.map((name) => ({ path: `metadata.labels.${name}`, message: `label ${name} is required` })),
    };
  },
};
