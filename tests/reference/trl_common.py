"""Shared helpers for the TRL parity reference scripts (sft_ref.py, dpo_ref.py).

The fixtures they write (tests/fixtures/trl/<case>/) hold already-tokenized data, every hyperparameter and
the per-step numbers TRL logs, so the C trainer can be compared on the training math alone.  Development
only: needs torch, transformers, trl, datasets.
"""
import json
import os
import tempfile

import torch
from transformers import PreTrainedTokenizerFast, TrainerCallback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FIX_TRL = os.path.join(ROOT, "tests", "fixtures", "trl")
TINY_LLAMA = os.path.join(ROOT, "tests", "fixtures", "models", "tiny-llama")
STORIES_DIR = "/tmp/hone-ref/stories260K"  # written by model_ref.py, never committed
SHARED = os.path.join(ROOT, "..", "shared")

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)


def id_tokenizer(vocab_size):
    """A tokenizer whose text form of token id i is the string "<i>" (no separators), so that TRL's string
    concatenations (prompt + completion, + eos_token) map one-to-one onto token ids.  No special tokens are
    added on encode (no post-processor): BOS must be written into the data explicitly."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    vocab = {f"<{i}>": i for i in range(vocab_size)}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<0>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(r"<\d+>"), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<1>", eos_token="<2>", pad_token="<0>",
                                   unk_token="<0>")


def stories_tokenizer():
    """stories260K's tok512.model as the fast tokenizer transformers 5 builds for a Llama-2-style
    SentencePiece model (LlamaTokenizer: Prepend + Replace normalizer, BPE with byte fallback, BOS
    added, ByteFallback decoder), built here from the SentencePiece vocabulary and scores with
    transformers' SentencePieceExtractor rule for the merges (no protobuf needed).  Its special tokens
    are not normalized, as in the LlamaTokenizer transformers 5 loads for such a model, so TRL's
    `text + eos_token` ends in the EOS id 2.  Callers check its ids against SentencePiece itself
    (`check_stories_ids`)."""
    import sentencepiece as spm
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

    sp = spm.SentencePieceProcessor(model_file=os.path.join(SHARED, "models", "stories260K", "tok512.model"))
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    merges = []
    for piece, pid in vocab.items():
        if sp.is_control(pid) or sp.is_unknown(pid) or sp.is_byte(pid):
            continue
        splits = sorted((vocab[piece[:k]], vocab[piece[k:]], piece[:k], piece[k:]) for k in range(1, len(piece))
                        if piece[:k] in vocab and piece[k:] in vocab)
        merges += [(-sp.get_score(pid), pid, a, b) for _, _, a, b in splits]
    merges.sort()
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[(a, b) for _, _, a, b in merges], unk_token="<unk>", fuse_unk=True,
                              byte_fallback=True))
    tk.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tk.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                    decoders.Strip(" ", 1, 0)])
    tk.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in ("<unk>", "<s>", "</s>")])
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tok.pad_token = tok.eos_token  # TRL's default when the tokenizer has none
    return tok, sp


def check_stories_ids(tok, sp, texts):
    """The tokenizer equals SentencePiece on these texts (BOS + sp.encode), or the fixture would be wrong."""
    for t in texts:
        a, b = tok(t)["input_ids"], [1] + sp.encode(t)
        assert a == b, f"stories tokenizer differs from SentencePiece on {t!r}: {a} vs {b}"


def ids_to_text(ids):
    return "".join(f"<{i}>" for i in ids)


class LogRecorder(TrainerCallback):
    """Collects every `trainer.log` dict emitted during training (one per optimizer step with logging_steps=1)."""

    def __init__(self):
        self.logs = []
        self.eval_logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None and "loss" in logs:
            self.logs.append({"step": state.global_step, **{k: float(v) for k, v in logs.items()}})
        if logs is not None and "eval_loss" in logs:
            keep = {k: float(v) for k, v in logs.items() if "runtime" not in k and "per_second" not in k}
            self.eval_logs.append({"step": state.global_step, **keep})


def base_args(out_dir, **kw):
    """TrainingArguments fields shared by every case: fp32 on CPU, no shuffling, log every step."""
    args = dict(
        output_dir=out_dir, report_to="none", logging_steps=1, save_strategy="no", bf16=False, fp16=False,
        use_cpu=True, train_sampling_strategy="sequential", gradient_checkpointing=False,
        dataloader_num_workers=0, disable_tqdm=True, dataloader_drop_last=False,
    )
    args.update(kw)
    return args


def load_model(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")


def load_model_4bit(path, quant):
    """QLoRA (issue 14): the model with its decoder linears quantised by bitsandbytes on the CPU
    (BitsAndBytesConfig(**quant), compute fp32); dequantisation in bitsandbytes' flat blocks
    (qlora_ref.use_flat_block_dequant: its AVX-512 path mis-indexes rows of 160 columns)."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    from qlora_ref import use_flat_block_dequant

    global _flat_dequant
    _flat_dequant = use_flat_block_dequant()
    bnb = BitsAndBytesConfig(bnb_4bit_compute_dtype=torch.float32, **quant)
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=bnb, dtype=torch.float32, device_map="cpu",
                                                 attn_implementation="eager")
    # evaluation (no grad) would repack the weights for bitsandbytes' bf16 AVX512-BF16 kernel (and fail on
    # rows of 160 columns): keep the fp32 dequantise-and-multiply path that training uses
    for mod in model.modules():
        if hasattr(mod, "support_avx512bf16_for_cpu"):
            mod.support_avx512bf16_for_cpu = False
    return model


def trainable_snapshot(model):
    """fp32 copies of the trainable tensors (for adapters_fp32), taken before the trainer is built"""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def adapters_fp32(trainer, snapshot):
    """QLoRA: TRL's SFT/DPO trainers cast the adapters of a quantised model to bf16 (the QLoRA paper's
    recommendation); hone keeps them fp32, so the reference puts back the exact fp32 values taken
    before (trainable_snapshot) and trains them in fp32 too. Call before trainer.train() (the
    optimizer is built there)."""
    for n, p in trainer.model.named_parameters():
        if n in snapshot:
            p.data = snapshot[n].clone()


def peft_wrap(model, lora, case, model_name, seed=1234):
    """LoRA (issue 14): wraps model with peft.get_peft_model(LoraConfig(**lora)) using PEFT's own
    initialisation (torch seeded: A kaiming-uniform, B zero) and saves that initial adapter to
    tests/fixtures/trl/<case>/adapter/ (PeftModel.save_pretrained; base_model_name_or_path made relative
    to the adapter dir for the committed tiny model) so hone starts from the identical adapter."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    pm = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **{"lora_dropout": 0.0, **lora}))
    d = os.path.join(FIX_TRL, case, "adapter")
    pm.save_pretrained(d)
    readme = os.path.join(d, "README.md")
    if os.path.exists(readme):
        os.remove(readme)
    cp = os.path.join(d, "adapter_config.json")
    with open(cp) as f:
        ac = json.load(f)
    ac["base_model_name_or_path"] = "../../../models/tiny-llama" if model_name == "tiny-llama" else "stories260K"
    with open(cp, "w") as f:
        json.dump(ac, f, indent=2, sort_keys=True)
    return pm


def param_norms(model):
    """L2 norm of every parameter after training (named as in model.safetensors)."""
    return {n: float(p.detach().double().norm()) for n, p in model.named_parameters()}


def tensor_to_list(v):
    if isinstance(v, torch.Tensor):
        return v.tolist()
    return v


def write_case(case, data_rows, config, expected, extra_files=None):
    """tests/fixtures/trl/<case>/{data.jsonl, config.json, expected.json, extra...}"""
    d = os.path.join(FIX_TRL, case)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "data.jsonl"), "w") as f:
        for r in data_rows:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    for name, rows in (extra_files or {}).items():
        with open(os.path.join(d, name), "w") as f:
            for r in rows:
                f.write(json.dumps(r, separators=(",", ":")) + "\n")
    return d


def tmpdir():
    return tempfile.mkdtemp(prefix="hone-ref-")


def optimizer_facts(trainer):
    """What the Trainer actually built: optimizer class/kwargs and which parameters get weight decay."""
    opt = trainer.optimizer
    opt = getattr(opt, "optimizer", opt)  # accelerate wrapper
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    groups = []
    for g in opt.param_groups:
        groups.append({"weight_decay": g["weight_decay"], "params": [names[id(p)] for p in g["params"]]})
    d = opt.defaults
    return {
        "class": type(opt).__name__,
        "fused": bool(d.get("fused")), "foreach": d.get("foreach"),
        "betas": list(d["betas"]), "eps": d["eps"], "amsgrad": d.get("amsgrad", False),
        "param_groups": groups,
    }


def case_config(name, trainer_cls, model_name, trainer, tok, args, n_rows):
    """Fields every case's config.json shares; train the trainer first (the optimizer exists after)."""
    import transformers
    import trl

    return {
        "case": name, "trainer": trainer_cls, "trl": trl.__version__, "transformers": transformers.__version__,
        "torch": torch.__version__,
        "model": "tests/fixtures/models/tiny-llama" if model_name == "tiny-llama"
        else "stories260K converted (hone convert ../shared/models/stories260K/stories260K.bin)",
        "pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id, "bos_token_id": tok.bos_token_id,
        "optim": str(args.optim.value if hasattr(args.optim, "value") else args.optim),
        "optimizer": optimizer_facts(trainer), "num_train_rows": len(trainer.train_dataset), "num_data_rows": n_rows,
        "max_steps_resolved": trainer.state.max_steps,
        "warmup_steps_resolved": args.get_warmup_steps(trainer.state.max_steps), "dropout": 0.0, "logging_steps": 1,
        "train_sampling_strategy": "sequential", "dataloader_drop_last": bool(args.dataloader_drop_last),
        "gradient_checkpointing": False,
    }
