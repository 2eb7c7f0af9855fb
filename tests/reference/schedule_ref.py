"""schedule_ref.py — writes tests/fixtures/schedule/schedules.json: the learning rate of every
optimizer step under transformers' get_scheduler, for every lr_scheduler_type hone supports
(all of transformers' SchedulerType but greedy), with and without lr_scheduler_kwargs, and
ReduceLROnPlateau stepped with a fixed metric sequence. tests/test_schedule.c compares.

Run: /work/venv/bin/python tests/reference/schedule_ref.py
"""
import json
import os

import torch
import transformers
from transformers import get_scheduler

BASE = 1e-3
W, T = 3, 20

CASES = [
    ("linear", {}, W), ("linear", {}, 0),
    ("cosine", {}, W), ("cosine", {"num_cycles": 1.5}, W),
    ("cosine_with_restarts", {}, W), ("cosine_with_restarts", {"num_cycles": 3}, W),
    ("polynomial", {}, W), ("polynomial", {"lr_end": 1e-5, "power": 2.0}, W),
    ("constant", {}, W), ("constant_with_warmup", {}, W), ("constant_with_warmup", {}, 0),
    ("inverse_sqrt", {}, W), ("inverse_sqrt", {}, 0), ("inverse_sqrt", {"timescale": 7}, W),
    ("cosine_with_min_lr", {"min_lr": 1e-5}, W), ("cosine_with_min_lr", {"min_lr_rate": 0.1, "num_cycles": 0.75}, W),
    ("cosine_warmup_with_min_lr", {"min_lr_rate": 0.05}, W),
    ("cosine_warmup_with_min_lr", {"min_lr": 1e-5, "warmup_lr_rate": 0.2}, 4),
    ("warmup_stable_decay", {"num_decay_steps": 6}, W),
    ("warmup_stable_decay", {"num_decay_steps": 5, "num_stable_steps": 4, "warmup_type": "cosine",
                             "decay_type": "1-sqrt", "min_lr_ratio": 0.1}, W),
    ("warmup_stable_decay", {"num_decay_steps": 8, "warmup_type": "1-sqrt", "decay_type": "linear"}, 5),
]

METRICS = [2.0, 1.5, 1.49, 1.6, 1.7, 1.2, 1.25, 1.3, 1.31, 1.19, 1.4, 1.5, 1.6, 1.0, 1.1, 1.2, 1.3] + [1.05] * 12
PLATEAU = [
    {"patience": 1, "factor": 0.5},
    {"mode": "max", "threshold_mode": "abs", "threshold": 0.05, "patience": 0, "cooldown": 2, "min_lr": 2e-4},
    {},
]


def optimizer():
    p = torch.nn.Parameter(torch.zeros(1))
    return torch.optim.SGD([p], lr=BASE)


def main():
    out = {"transformers": transformers.__version__, "torch": torch.__version__, "base_lr": BASE, "total": T,
           "cases": [], "plateau": {"metrics": METRICS, "cases": []}}
    for name, kw, w in CASES:
        opt = optimizer()
        s = get_scheduler(name, opt, num_warmup_steps=w, num_training_steps=T, scheduler_specific_kwargs=dict(kw))
        lrs = []
        for _ in range(T + 4):  # past the end too: the clamps of each schedule
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            s.step()
        out["cases"].append({"name": name, "kwargs": kw, "warmup": w, "lrs": lrs})
    for kw in PLATEAU:
        opt = optimizer()
        s = get_scheduler("reduce_lr_on_plateau", opt, scheduler_specific_kwargs=dict(kw))
        lrs = []
        for m in METRICS:
            s.step(m)
            lrs.append(opt.param_groups[0]["lr"])
        out["plateau"]["cases"].append({"kwargs": kw, "lrs": lrs})
    path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "schedule", "schedules.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(path), len(out["cases"]), "schedules,", len(PLATEAU), "plateau cases")


if __name__ == "__main__":
    main()
