// world: status-feedback
// {{name}}: a Maestro status-feedback plugin in JavaScript. It reports an object's Ready
// condition as health. Edit `status` to make it yours.

export const feedback = {
  validateSettings(_settings) {},

  status(_ctx, live, _desired, _settings) {
    let obj;
    try {
      obj = JSON.parse(live);
    } catch (err) {
      throw `live object is not JSON: ${err.message}`;
    }
    const conditions = (obj.status && obj.status.conditions) || [];
    const ready = conditions.find((c) => c.type === 'Ready');
    if (!ready) return { values: [], health: undefined };
    const isReady = ready.status === 'True';
    return {
      values: [{ name: 'ready', value: { tag: 'boolean', val: isReady } }],
      health: { state: isReady ? 'healthy' : 'progressing', message: ready.message || '' },
    };
  },
};
