"""sampling_ref.py — expected outputs of transformers' logits processors on hand-made
logits, for tests/test_generate.c (hone's sampling_process must give the same kept set
and the same values). Writes tests/fixtures/sampling.json; a rerun is byte-identical.

Processors, in generate's order: RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
TopKLogitsWarper, TopPLogitsWarper, MinPLogitsWarper (transformers 5.24)."""
import json, os
import torch
from transformers.generation.logits_process import (
    LogitsProcessorList, MinPLogitsWarper, RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)

torch.manual_seed(0)
V = 16
cases = []
settings = [
    dict(temperature=1.0),
    dict(temperature=0.7),
    dict(temperature=1.0, top_k=5),
    dict(temperature=1.0, top_p=0.8),
    dict(temperature=1.0, top_p=0.35),
    dict(temperature=1.0, min_p=0.1),
    dict(temperature=1.0, min_p=0.3),
    dict(temperature=1.0, repetition_penalty=1.3),
    dict(temperature=0.8, top_k=8, top_p=0.9, min_p=0.05, repetition_penalty=1.2),
    dict(temperature=1.5, top_k=3, repetition_penalty=0.8),
]
for i, st in enumerate(settings):
    logits = (torch.randn(1, V) * 2.0).float()
    hist = torch.randint(0, V, (1, 6))
    procs = LogitsProcessorList()
    if st.get("repetition_penalty", 1.0) != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(st["repetition_penalty"]))
    if st["temperature"] != 1.0:
        procs.append(TemperatureLogitsWarper(st["temperature"]))
    if st.get("top_k", 0):
        procs.append(TopKLogitsWarper(st["top_k"]))
    if st.get("top_p", 1.0) < 1.0:
        procs.append(TopPLogitsWarper(st["top_p"]))
    if st.get("min_p", 0.0) > 0:
        procs.append(MinPLogitsWarper(st["min_p"]))
    out = procs(hist, logits.clone())[0]
    cases.append(dict(
        settings=dict(temperature=st["temperature"], top_k=st.get("top_k", 0), top_p=st.get("top_p", 1.0),
                      min_p=st.get("min_p", 0.0), repetition_penalty=st.get("repetition_penalty", 1.0)),
        logits=[float(x) for x in logits[0]],
        history=[int(x) for x in hist[0]],
        expected=[None if x == float("-inf") else float(x) for x in out]))

path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "sampling.json")
with open(path, "w") as f:
    json.dump(dict(V=V, cases=cases), f, indent=1)
    f.write("\n")
print("wrote", path, len(cases), "cases")
