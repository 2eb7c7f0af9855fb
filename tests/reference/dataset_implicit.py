"""Reference for hone's implicit-prompt extraction (format: implicit).

Runs TRL's own `extract_prompt` (trl.data_utils) on
  - tests/fixtures/data/dpo_implicit.jsonl (hand-made HH-RLHF-like pairs) and
  - ../shared/data/hh-rlhf-harmless/pairs.dev.jsonl.gz when present,
and writes tests/fixtures/data/implicit_expected.json with, per row, the UTF-8 byte
lengths of the extracted prompt, chosen and rejected (no data is copied from
../shared, only lengths), plus the full strings for the hand-made fixture.
Usage: /work/venv/bin/python tests/reference/dataset_implicit.py
"""
import gzip
import json
import os

from trl.data_utils import extract_prompt

root = os.path.join(os.path.dirname(__file__), "..", "..")
fixture = os.path.join(root, "tests/fixtures/data/dpo_implicit.jsonl")
real = os.path.join(root, "..", "shared/data/hh-rlhf-harmless/pairs.dev.jsonl.gz")


def lens(rows):
    out = []
    for r in rows:
        e = extract_prompt(r)
        out.append([len(e["prompt"].encode()), len(e["chosen"].encode()), len(e["rejected"].encode())])
    return out


fx = [json.loads(line) for line in open(fixture, encoding="utf-8") if line.strip()]
res = {"fixture": [extract_prompt(r) for r in fx], "fixture_lens": lens(fx)}
if os.path.exists(real):
    hh = [json.loads(line) for line in gzip.open(real, "rt", encoding="utf-8")]
    res["hh_rlhf_harmless_lens"] = lens(hh)
    res["hh_rlhf_harmless_not_at_turn"] = sum(
        1 for r in hh if not extract_prompt(r)["prompt"].endswith("Assistant:"))
with open(os.path.join(root, "tests/fixtures/data/implicit_expected.json"), "w", encoding="utf-8") as f:
    json.dump(res, f, ensure_ascii=False, separators=(",", ":"))
    f.write("\n")
print("rows:", len(fx), len(res.get("hh_rlhf_harmless_lens", [])), "not at turn:", res.get("hh_rlhf_harmless_not_at_turn"))
