// world: status-feedback
// Status feedback in JavaScript: rollout health of a Deployment from its status counts.
// Built with componentize-js against wit/ (world `status-feedback`). WIT s64 values are
// BigInt in JavaScript.

const count = (obj, key) => (Number.isInteger(obj && obj[key]) ? obj[key] : 0);

export const feedback = {
  validateSettings(_settings) {},

  status(_ctx, live, _desired, _settings) {
    let obj;
    try {
      obj = JSON.parse(live);
    } catch (err) {
      throw `live object is not JSON: ${err.message}`;
    }
    if (obj.kind !== 'Deployment') return { values: [], health: undefined };
    const status = obj.status || {};
    const want = Number.isInteger(obj.spec && obj.spec.replicas) ? obj.spec.replicas : 1;
    const updated = count(status, 'updatedReplicas');
    const available = count(status, 'availableReplicas');
    const values = [
      { name: 'replicas', value: { tag: 'integer', val: BigInt(want) } },
      { name: 'updatedReplicas', value: { tag: 'integer', val: BigInt(updated) } },
      { name: 'availableReplicas', value: { tag: 'integer', val: BigInt(available) } },
    ];
    const observed = count(status, 'observedGeneration') >= count(obj.metadata, 'generation');
    let health;
    if (!observed || updated < want) {
      health = { state: 'progressing', message: `${updated} of ${want} replicas updated` };
    } else if (available < want) {
      health = { state: 'degraded', message: `${available} of ${want} replicas available` };
    } else {
      health = { state: 'healthy', message: `${available} of ${want} replicas available` };
    }
    return { values, health };
  },
};
