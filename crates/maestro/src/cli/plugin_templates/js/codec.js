// world: codec
// {{name}}: a Maestro codec in JavaScript. It XORs every byte with the key byte in its
// settings ({"key": 42}; 0 by default), to show the shape: replace `encode` and `decode`
// with a real transformation. `decode` must undo `encode` exactly.

function key(settings) {
  const parsed = settings.trim() === '' ? null : JSON.parse(settings);
  if (parsed === null) return 0;
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('settings must be an object');
  const unknown = Object.keys(parsed).filter((k) => k !== 'key');
  if (unknown.length > 0) throw new Error(`unknown settings: ${unknown.sort().join(', ')}`);
  const value = parsed.key === undefined ? 0 : parsed.key;
  if (!Number.isInteger(value) || value < 0 || value > 255) throw new Error('key must be an integer from 0 to 255');
  return value;
}

function xor(data, settings) {
  let k;
  try {
    k = key(settings);
  } catch (err) {
    throw String(err.message || err);
  }
  return data.map((b) => b ^ k);
}

export const transcode = {
  validateSettings(settings) {
    try {
      key(settings);
    } catch (err) {
      throw String(err.message || err);
    }
  },

  encode(_ctx, data, settings) {
    return xor(data, settings);
  },

  decode(_ctx, data, settings) {
    return xor(data, settings);
  },
};
