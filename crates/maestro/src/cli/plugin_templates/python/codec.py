# world: codec
"""{{name}}: a Maestro codec in Python. It XORs every byte with the key byte in its settings
({"key": 42}; 0 by default), to show the shape: replace `encode` and `decode` with a real
transformation. `decode` must undo `encode` exactly."""

import json

from componentize_py_types import Err
from wit_world import exports


def _key(settings: str) -> int:
    parsed = json.loads(settings) if settings.strip() not in ("", "null") else {}
    if not isinstance(parsed, dict):
        raise ValueError("settings must be an object")
    unknown = set(parsed) - {"key"}
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    key = parsed.get("key", 0)
    # bool is an int in Python; a key of `true` is a mistake, not 1.
    if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key <= 255:
        raise ValueError("key must be an integer from 0 to 255")
    return key


def _xor(data: bytes, settings: str) -> bytes:
    try:
        key = _key(settings)
    except ValueError as err:
        raise Err(str(err))
    return bytes(b ^ key for b in data)


class Transcode(exports.Transcode):
    def validate_settings(self, settings: str) -> None:
        try:
            _key(settings)
        except ValueError as err:
            raise Err(str(err))

    def encode(self, ctx, data: bytes, settings: str) -> bytes:
        return _xor(data, settings)

    def decode(self, ctx, data: bytes, settings: str) -> bytes:
        return _xor(data, settings)
