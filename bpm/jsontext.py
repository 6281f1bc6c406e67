"""``JSONEncoder.encode`` without its per-call Python layers.

``encoder.encode(value)`` runs ``encode`` and ``iterencode`` in Python on every call (a
closure made, the settings read again) before handing ``value`` to the C encoder
(``json.encoder.c_make_encoder``) that does the work. :func:`one_shot` makes that C
encoder's call with the encoder's settings directly: the same text and the same errors
(a fresh circular-reference check per call, as ``iterencode`` makes one).
``tests/test_jsontext.py`` compares the two.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _stdlib
from typing import Any

__all__ = ["one_shot"]


def one_shot(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """A function writing what ``encoder.encode`` writes for a value; ``encoder.encode``
    itself when it is not the standard library's compact one-shot path (no C encoder, an
    indent, or a subclass overriding ``encode``/``iterencode``)."""
    make = getattr(_stdlib, "c_make_encoder", None)  # None without the C accelerator
    if (
        make is None
        or encoder.indent is not None
        or type(encoder).encode is not json.JSONEncoder.encode
        or type(encoder).iterencode is not json.JSONEncoder.iterencode
    ):
        return encoder.encode
    default = encoder.default
    strings = _stdlib.encode_basestring_ascii if encoder.ensure_ascii else _stdlib.encode_basestring
    key_separator, item_separator = encoder.key_separator, encoder.item_separator
    sort_keys, skipkeys, allow_nan = encoder.sort_keys, encoder.skipkeys, encoder.allow_nan
    circular = encoder.check_circular
    join = "".join

    def encode(value: Any) -> str:
        markers: dict[int, Any] | None = {} if circular else None
        chunks = make(markers, default, strings, None, key_separator, item_separator, sort_keys, skipkeys, allow_nan)(
            value, 0
        )
        return join(chunks)

    return encode
