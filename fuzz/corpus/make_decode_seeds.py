#!/usr/bin/env python3
"""Writes fuzz/corpus/decode/: Confluent-framed Avro records made with
fastavro (not our encoder), one per file, for the schema ids fuzz_decode
registers (1..4 from schemas/, 10..12 from tests/unit/data). Synthetic
values only. Run with the test virtualenv:

    tests/py/venv.sh fuzz/corpus/make_decode_seeds.py
"""
import io
import json
import os
import struct

import fastavro

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = os.path.join(root, "fuzz", "corpus", "decode")
TS = 1700000000123


def schema(path):
    with open(os.path.join(root, path)) as f:
        return fastavro.parse_schema(json.load(f))


def frame(schema_id, parsed, record):
    buf = io.BytesIO()
    buf.write(struct.pack(">bi", 0, schema_id))
    fastavro.schemaless_writer(buf, parsed, record)
    return buf.getvalue()


click = schema("schemas/click.avsc")
purchase = schema("schemas/purchase.avsc")
rec = schema("schemas/recommendation.avsc")
anomaly = schema("schemas/anomaly.avsc")
click_v0 = schema("tests/unit/data/click_v0.avsc")
click_v2 = schema("tests/unit/data/click_v2.avsc")
purchase_v0 = schema("tests/unit/data/purchase_v0.avsc")

seeds = {
    "click_min": frame(1, click, {"user_id": "u1", "item_id": "i1", "ts": TS,
                                  "session_id": None, "context": None}),
    "click_full": frame(1, click, {"user_id": "user-42", "item_id": "item-7",
                                   "ts": TS, "session_id": "s-9",
                                   "context": {"page": "home", "position": 3}}),
    "click_ctx_nulls": frame(1, click, {"user_id": "u", "item_id": "i", "ts": 1,
                                        "session_id": "",
                                        "context": {"page": None, "position": None}}),
    "purchase_min": frame(2, purchase, {"user_id": "u1", "item_id": "i1", "ts": TS,
                                        "quantity": 1, "price": 0.0,
                                        "currency": "EUR", "order_id": None}),
    "purchase_full": frame(2, purchase, {"user_id": "u2", "item_id": "i9", "ts": TS,
                                         "quantity": 3, "price": 19.99,
                                         "currency": "USD", "order_id": "o-1"}),
    "recommendation": frame(3, rec, {"user_id": "u1",
                                     "items": [{"item_id": "a", "score": 1.5},
                                               {"item_id": "b", "score": -0.25}],
                                     "model_version": 12,
                                     "input_topic": "advrec.clicks",
                                     "input_partition": 2, "input_offset": 99,
                                     "generated_at": TS}),
    "anomaly": frame(4, anomaly, {"entity_type": "USER", "entity_id": "bot-1",
                                  "score": 7.5, "reasons": ["click-rate", "no-purchase"],
                                  "evidence": {"clicks_1m": 912, "items": 3},
                                  "action": "QUARANTINED", "ts": TS,
                                  "detector": "user"}),
    "click_v0": frame(10, click_v0, {"user_id": "u3", "item_id": "i3", "ts": TS}),
    "click_v2": frame(12, click_v2, {"user_id": "u4", "referrer": "ads", "item_id": "i4",
                                     "ts": TS, "session_id": "s",
                                     "context": {"page": "p", "position": 0,
                                                 "slot": [1, -2, 3]},
                                     "dwell_ms": 1500}),
    "purchase_v0": frame(11, purchase_v0, {"user_id": "u5", "item_id": "i5", "ts": TS,
                                           "price": 2.5}),
    "bad_magic": b'{"user_id":"u1"}',
}

os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
