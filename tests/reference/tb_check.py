#!/usr/bin/env python3
"""tb_check.py — checks hone's TensorBoard event files (`report_to: tensorboard`) with
TensorBoard's own reader: the event files under LOGDIR (searched recursively; default: the
newest directory of OUTPUT_DIR/runs, i.e. the last process's; --all: every directory there in
time order, a later one's value winning at a step, for a resumed run) are loaded with
tensorboard's EventAccumulator, and every number of
OUTPUT_DIR/metrics.jsonl must be there as a scalar with transformers' tag
(rewrite_logs: eval_x -> eval/x, other keys -> train/x) at the line's step, equal to the
JSON number rounded to float32 (exactly: hone writes the float nearest the printed number);
no scalar may be there that metrics.jsonl does not have; the run's configuration must be
there as the text "args" (args/text_summary, as transformers writes its arguments) naming the
same output_dir. Development time only (CI never runs Python); writes nothing. Exit status 0
when everything matches.

Usage: python tests/reference/tb_check.py OUTPUT_DIR [LOGDIR | --all]
Tested with tensorboard 2.21.0 (pip install tensorboard into /work/venv)."""
import json
import math
import os
import struct
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def tag_of(key):
    if key.startswith("eval_"):
        return "eval/" + key[5:]
    if key.startswith("test_"):
        return "test/" + key[5:]
    return "train/" + key


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    arg = sys.argv[2] if len(sys.argv) > 2 else None
    runs = os.path.join(out, "runs")
    if arg and arg != "--all":
        roots = [arg]
    else:
        subs = sorted((os.path.join(runs, d) for d in os.listdir(runs)), key=os.path.getmtime) if os.path.isdir(runs) else []
        roots = subs if arg == "--all" else subs[-1:]
    dirs = [root for r in roots for root, _, files in sorted(os.walk(r)) if any(f.startswith("events.out.tfevents.") for f in files)]
    if not dirs:
        sys.exit(f"{out}: no event files")
    have = {}  # (tag, step) -> value
    n_events = 0
    args_ok = 0
    for d in dirs:
        acc = EventAccumulator(d, size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            for ev in acc.Scalars(tag):
                have[(tag, ev.step)] = ev.value
                n_events += 1
        if "args/text_summary" in acc.Tags()["tensors"]:
            from tensorboard.util import tensor_util
            text = tensor_util.make_ndarray(acc.Tensors("args/text_summary")[0].tensor_proto)[0].decode()
            args_ok += json.loads(text).get("output_dir") is not None
    want = {}
    with open(os.path.join(out, "metrics.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            step = row.pop("step")
            for k, v in row.items():
                want[(tag_of(k), step)] = float("nan") if v is None else f32(v)
    bad = 0
    for key, v in sorted(want.items()):
        got = have.get(key)
        same = got is not None and (got == v or (math.isnan(v) and math.isnan(got)))
        if not same:
            bad += 1
            if bad <= 10:
                print(f"MISMATCH {key[0]} step {key[1]}: metrics.jsonl {v!r}, event file {got!r}")
    extra = set(have) - set(want)
    for key in sorted(extra)[:10]:
        print(f"EXTRA {key[0]} step {key[1]}: {have[key]!r} is not in metrics.jsonl")
    tags = sorted({t for t, _ in want})
    print(f"{len(dirs)} run dir(s), {n_events} scalar events, {len(want)} metrics.jsonl values, {len(tags)} tags: {' '.join(tags)}")
    print(f"{len(want) - bad} equal, {bad} missing or different, {len(extra)} extra; "
          f"args text (the configuration) in {args_ok} of {len(dirs)} dir(s)")
    sys.exit(1 if bad or extra or args_ok != len(dirs) else 0)


if __name__ == "__main__":
    main()
