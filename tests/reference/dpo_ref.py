#!/usr/bin/env python3
"""DPO training-step parity fixtures: TRL 1.16 DPOTrainer on pre-tokenized pairs (issue 5).

For each case writes tests/fixtures/trl/<case>/ with data.jsonl (prompt_input_ids, chosen_input_ids,
rejected_input_ids), config.json (every hyperparameter), expected.json (per-step loss, grad_norm,
learning_rate and every metric DPOTrainer logs, plus parameter norms after training) and, for dpo_sigmoid,
batches.jsonl (the exact micro-batches).  See tests/reference/README.md.

usage: dpo_ref.py [--only CASE ...] [--list]
"""
import argparse
import os
import random
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trl_common as C  # noqa: E402


def tiny_pairs(n, seed, vocab=256):
    """prompt = BOS + 2..9 random ids; chosen = the prompt reversed (+ 0..3 random) + EOS; rejected = 2..12
    random ids + EOS.  Lengths up to 10 + 13, so max_length 20 truncates some completions."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        p = [rng.randrange(3, vocab) for _ in range(rng.randint(2, 9))]
        ch = p[::-1] + [rng.randrange(3, vocab) for _ in range(rng.randint(0, 3))] + [2]
        rj = [rng.randrange(3, vocab) for _ in range(rng.randint(2, 12))] + [2]
        rows.append({"prompt_input_ids": [1] + p, "chosen_input_ids": ch, "rejected_input_ids": rj})
    return rows


STORIES = [
    ("Lily had a red ball.", " She threw it to her dog.", " The ball ate a big cake."),
    ("Tom saw a big tree.", " He wanted to climb it.", " The tree was a blue fish."),
    ("The cat was hungry.", " It ate some fish.", " It sang to the moon car."),
    ("Sara found a shiny stone.", " She put it in her pocket.", " Stone stone stone stone."),
    ("The sun was hot.", " Ben went to swim in the lake.", " Ben was cold and snow fell."),
    ("Mia had a little doll.", " She loved it very much.", " The doll drove a truck away."),
    ("The bird sang a song.", " Everyone was happy.", " The song was a green dog."),
    ("Max lost his toy car.", " His mom helped him find it.", " Max was a car."),
]


def stories_pairs(n):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=os.path.join(C.SHARED, "models", "stories260K", "tok512.model"))
    rows = []
    for i in range(n):
        p, c, r = STORIES[i % len(STORIES)]
        pi = [1] + sp.encode(p)
        ci = ([1] + sp.encode(p + c))[len(pi):] + [2]
        ri = ([1] + sp.encode(p + r))[len(pi):] + [2]
        assert ([1] + sp.encode(p + c))[:len(pi)] == pi and ([1] + sp.encode(p + r))[:len(pi)] == pi
        rows.append({"prompt_input_ids": pi, "chosen_input_ids": ci, "rejected_input_ids": ri})
    return rows


COMMON = dict(
    learning_rate=5e-3, lr_scheduler_type="linear", warmup_steps=0, per_device_train_batch_size=2,
    gradient_accumulation_steps=2, max_grad_norm=1.0, weight_decay=0.01, adam_beta1=0.9, adam_beta2=0.999,
    adam_epsilon=1e-8, seed=42, max_steps=10, beta=0.1, max_length=20, truncation_mode="keep_start",
    loss_type=["sigmoid"], loss_weights=None, label_smoothing=0.0, f_divergence_type="reverse_kl",
    f_alpha_divergence_coef=0.5, ld_alpha=None, use_weighting=False, discopop_tau=0.05,
    precompute_ref_log_probs=False, precompute_ref_batch_size=None, sync_ref_model=False,
    ref_model_mixup_alpha=0.6, ref_model_sync_steps=512, disable_dropout=True,
)

LOSSES = ["sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
          "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm"]


def cases():
    out = {}
    for lt in LOSSES:
        over = {"loss_type": [lt]}
        if lt == "exo_pair":
            over["label_smoothing"] = 1e-3  # TRL requires > 0 for exo_pair
        if lt == "robust":
            over["label_smoothing"] = 0.1
        if lt == "aot":
            over["label_smoothing"] = 0.1
        out["dpo_" + lt] = ("tiny-llama", over, "ref_model")
    out["dpo_precompute_ref"] = ("tiny-llama", {"precompute_ref_log_probs": True}, "precompute")
    out["dpo_reference_free"] = ("tiny-llama", {}, "reference_free")
    out["dpo_mpo_combo"] = ("tiny-llama", {"loss_type": ["sigmoid", "bco_pair", "sft"],
                                           "loss_weights": [0.8, 0.2, 1.0]}, "ref_model")
    out["dpo_f_forward_kl"] = ("tiny-llama", {"f_divergence_type": "forward_kl"}, "ref_model")
    out["dpo_f_js_divergence"] = ("tiny-llama", {"f_divergence_type": "js_divergence"}, "ref_model")
    out["dpo_f_alpha_divergence"] = ("tiny-llama", {"f_divergence_type": "alpha_divergence",
                                                    "f_alpha_divergence_coef": 0.5}, "ref_model")
    out["dpo_ld_alpha"] = ("tiny-llama", {"ld_alpha": 0.5}, "ref_model")
    out["dpo_wpo_weighting"] = ("tiny-llama", {"use_weighting": True}, "ref_model")
    out["dpo_sync_ref"] = ("tiny-llama", {"sync_ref_model": True, "ref_model_sync_steps": 3,
                                          "ref_model_mixup_alpha": 0.6}, "ref_model")
    out["dpo_stories260K"] = ("stories260K", {"learning_rate": 2e-4, "max_length": 32}, "ref_model")
    # LoRA (issue 14): a PEFT model and no ref_model: TRL's reference is the policy with adapters off
    out["dpo_lora"] = ("tiny-llama", {"lora": dict(r=8, lora_alpha=16, target_modules="all-linear")}, "lora")
    # QLoRA: the same on a base held in nested NF4 by bitsandbytes (CPU backend, compute fp32)
    out["dpo_qlora"] = ("tiny-llama", {"lora": dict(r=8, lora_alpha=16, target_modules="all-linear"),
                                       "quant": dict(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                     bnb_4bit_use_double_quant=True)}, "lora")
    out["dpo_lora_precompute"] = ("tiny-llama", {"precompute_ref_log_probs": True,
                                                 "lora": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                              use_rslora=True)}, "lora")
    # lora_dropout 0.1 in the adapter config: DPOTrainer's disable_dropout (default) sets it to 0 in the modules
    out["dpo_lora_dropout"] = ("tiny-llama", {"lora": dict(r=4, lora_alpha=8, lora_dropout=0.1,
                                                           target_modules=["q_proj", "v_proj", "down_proj"])}, "lora")
    out["dpo_lora_stories260K"] = ("stories260K", {"learning_rate": 2e-3, "max_length": 32,
                                                   "lora": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])},
                                   "lora")
    # bf16=True (issue 15): CPU autocast to bf16 for the policy and the reference model; 20 steps.
    # Not on stories260K: there AdamW's first update (about lr * sign(g) per weight) takes the sign of
    # gradients that bf16 rounding noise decides, so the step-2 margin is 0.026 in TRL bf16, 0.009 in
    # TRL fp32, 0.016-0.020 with only the linears rounded in Python and 0.007-0.012 in hone's bf16
    # paths: the loss differs by 1-6% between any two of them (measured 2026-12-07, lr 3e-5)
    out["dpo_autocast_bf16"] = ("tiny-llama", {"bf16": True, "max_steps": 20}, "ref_model")
    return out


WITH_EVAL = ("dpo_sigmoid", "dpo_precompute_ref", "dpo_lora", "dpo_qlora")
EVAL = dict(eval_strategy="steps", eval_steps=5, eval_on_start=True, per_device_eval_batch_size=3)


def to_text_dataset(rows):
    from datasets import Dataset

    return Dataset.from_list([{"prompt": C.ids_to_text(r["prompt_input_ids"]),
                               "chosen": C.ids_to_text(r["chosen_input_ids"]),
                               "rejected": C.ids_to_text(r["rejected_input_ids"])} for r in rows])


def run_case(name, spec):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    model_name, over, ref_mode = spec
    model_path = C.TINY_LLAMA if model_name == "tiny-llama" else C.STORIES_DIR
    if not os.path.exists(os.path.join(model_path, "config.json")):
        print(f"skip {name}: {model_path} missing (run model_ref.py first)")
        return
    rows = tiny_pairs(40, 7) if model_name == "tiny-llama" else stories_pairs(40)
    hp = dict(COMMON)
    hp.update(over)
    lora = hp.pop("lora", None)
    quant = hp.pop("quant", None)
    args = DPOConfig(**C.base_args(C.tmpdir(), **hp))
    model = C.load_model_4bit(model_path, quant) if quant else C.load_model(model_path)
    if lora:
        model = C.peft_wrap(model, lora, name, model_name)
    tok = C.id_tokenizer(model.config.vocab_size)
    ds = to_text_dataset(rows)
    eval_rows = tiny_pairs(8, 70) if name in WITH_EVAL else None
    if eval_rows:
        hp.update(EVAL)
        args = DPOConfig(**C.base_args(C.tmpdir(), **hp))
    batches = []
    record = name == "dpo_sigmoid"

    class Trainer(DPOTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if record and model.training:
                rec = {"step": self.state.global_step + 1}
                for k in ("input_ids", "attention_mask", "completion_mask", "ref_chosen_logps",
                          "ref_rejected_logps"):
                    if k in inputs:
                        rec[k] = C.tensor_to_list(inputs[k])
                batches.append(rec)
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

        def _precompute_ref_logps(self, dataset, split, batch_size):
            if ref_mode != "reference_free":
                return super()._precompute_ref_logps(dataset, split, batch_size)
            # TRL 1.16 has no `reference_free`; older TRL (0.x) implemented it as ref logps = 0
            n = len(dataset)
            return dataset.add_column("ref_chosen_logps", [0.0] * n).add_column("ref_rejected_logps", [0.0] * n)

    if ref_mode == "reference_free":
        args.precompute_ref_log_probs = True
    ref_model = C.load_model(model_path) if ref_mode == "ref_model" else None
    rec = C.LogRecorder()
    snap = C.trainable_snapshot(model) if quant else None
    trainer = Trainer(model=model, ref_model=ref_model, args=args, train_dataset=ds, processing_class=tok,
                      eval_dataset=to_text_dataset(eval_rows) if eval_rows else None,
                      callbacks=[rec])
    ref_logps = None
    if ref_mode in ("precompute", "reference_free"):
        ref_logps = [{"ref_chosen_logps": r["ref_chosen_logps"], "ref_rejected_logps": r["ref_rejected_logps"]}
                     for r in trainer.train_dataset]
    if quant:
        C.adapters_fp32(trainer, snap)
    if hp.get("bf16"):  # autocast on: accelerate's bf16 mixed precision over the fp32 models
        assert trainer.accelerator.mixed_precision == "bf16" and next(trainer.model.parameters()).dtype == torch.float32
    trainer.train()
    n_train = len(trainer.train_dataset)
    config = C.case_config(name, "DPOTrainer", model_name, trainer, tok, args, len(rows))
    config.update({
        "reference": {"lora": "the PEFT policy with its adapters disabled (no ref_model)",
                      "ref_model": "separate frozen copy of the initial policy (same weights)",
                      "precompute": "precompute_ref_log_probs: initial policy, one pass before training",
                      "reference_free": "reference_free (emulated: TRL 1.16 lacks it): ref logps = 0"}[ref_mode],
        "reference_mode": ref_mode, "padding_free": False, "pad_to_multiple_of": None, **hp})
    if quant:
        config["quant"] = quant
    if lora:
        config["lora"] = lora
        config["lora_adapter"] = "adapter"
        if ref_mode == "lora" and hp.get("precompute_ref_log_probs"):
            config["reference"] = "precompute_ref_log_probs on the PEFT policy with adapters disabled"
    if ref_mode == "reference_free":
        config["precompute_ref_log_probs"] = False
        config["reference_free"] = True
    expected = {"steps": rec.logs, "final_param_norms": C.param_norms(trainer.model)}
    if ref_logps is not None:
        expected["ref_logps"] = ref_logps
    extra = {"batches.jsonl": batches} if record else {}
    if eval_rows:
        expected["eval"] = rec.eval_logs
        extra["eval.jsonl"] = eval_rows
    d = C.write_case(name, rows, config, expected, extra)
    l = rec.logs
    print(f"{name}: {len(l)} steps, {n_train} pairs, loss {l[0]['loss']:.5f} -> {l[-1]['loss']:.5f}, "
          f"margins {l[0]['rewards/margins']:.4f} -> {l[-1]['rewards/margins']:.4f}, "
          f"acc {l[-1]['rewards/accuracies']:.2f}; wrote {d}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    for name, spec in cases().items():
        if a.list:
            print(name, spec)
            continue
        if a.only and name not in a.only:
            continue
        run_case(name, spec)


if __name__ == "__main__":
    main()
