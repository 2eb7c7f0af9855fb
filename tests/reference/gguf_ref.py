#!/usr/bin/env python3
"""GGUF export fixtures for hone (issue 18), checked against llama.cpp itself.

  gguf_ref.py tokenizers   writes tests/fixtures/gguf/tok-{gpt2,qwen2,llama3}/: one small byte-level
                           BPE (256 bytes + 3 specials + 41 merges, trained with `tokenizers`) under
                           the GPT-2, Qwen2 and Llama-3 pre-tokenizers, with a ChatML template
  gguf_ref.py fixtures     runs bin/test_gguf with HONE_GGUF_KEEP=DIR, so the test writes the models
                           it builds (tiny Llama / Llama-k / Qwen2 / Gemma, stories260K) and their GGUF
                           exports in every type, then for each file:
                             - runs llama.cpp (llama-cpp-python: f32 KV cache, no flash attention,
                               1 thread) on the test's prompts and keeps the logits of their last
                               positions (and, with the LoRA GGUF applied to the f32 base, --lora's);
                             - quantises hone's f32 export with llama.cpp's own llama_model_quantize
                               to f16/bf16/q8_0/q4_0/q4_k_m and keeps the sha256 and ggml type of
                               every tensor it writes;
                           into tests/fixtures/gguf/<model>.safetensors, which `make check` reads.
  gguf_ref.py exact-gelu LIBDIR [KEEP]   adds "f32.exact_gelu.logits" to the Gemma fixtures:
                           llama.cpp's logits on the f32 file (from KEEP, written by `fixtures`)
                           with a libllama built from the same llama.cpp source without
                           GGML_GELU_FP16 (ggml/src/ggml-cpu/vec.h: the line `#define GGML_GELU_FP16`
                           commented out; cmake -DBUILD_SHARED_LIBS=ON, target llama), loaded
                           through LLAMA_CPP_LIB_PATH=LIBDIR. Stock llama.cpp computes GELU by
                           looking its input up in a table of fp16 values, 4e-4 of the largest
                           logit away from the exact function on tiny-gemma; this isolates that.
  gguf_ref.py check MODEL_DIR [ADAPTER_DIR]   development check of a real model (e.g. stories260K
                           after `hone sft`): exports it with bin's hone in every type, compares
                           llama.cpp's logits on a text prompt with transformers' (fp32) and the greedy
                           text of llama.cpp with `hone generate`'s; with an adapter, its gguf-lora
                           applied by llama.cpp with --lora against the merged model's logits.
  gguf_ref.py tokenize DIR GGUF   compares llama.cpp's tokenization of the corpus with the
                           `tokenizers` library's for an exported tokenizer (development check).

Development only (llama-cpp-python, gguf, tokenizers, safetensors, numpy); the C test reads the outputs.
"""
import ctypes
import hashlib
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FIX = os.path.join(ROOT, "tests", "fixtures", "gguf")

# the prompts of tests/test_gguf.c (token ids, so the tokenizer is not in the comparison) and
# how many of their last positions are kept
PROMPTS = {"v300": [[0, 72, 105, 33, 259, 270, 280, 290], [0, 84, 104, 101, 32, 299, 115, 3]],
           "stories": [[1, 403, 407, 261, 378, 263, 351, 402], [1, 365, 1, 2, 300, 415, 450, 511]]}
KEEP = 3
TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m"]
FTYPE = {"f16": 1, "bf16": 32, "q8_0": 7, "q4_0": 2, "q4_k_m": 15}

TEXT = """Once upon a time there was a little robot who liked to count the stars. Every night it
climbed the hill behind the house and counted: one, two, three, four, five. The stars did not
mind. "What are you doing?" asked the owl. "I am counting," said the robot, "so that none of them
gets lost." The owl laughed and flew away, and the robot kept counting until the sun came up."""
CHATML = ("{% for message in messages %}{{ '<|bos|>' + message['role'] + '\\n' + message['content'] + '<|eos|>' + '\\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|bos|>assistant\\n' }}{% endif %}")


def tokenizers_fixture():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|bos|>", "<|eos|>", "<|pad|>"]
    tr = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                             show_progress=False)
    tok.train_from_iterator([TEXT] * 4, tr)
    tok.post_processor = processors.TemplateProcessing(single="<|bos|> $A", pair="<|bos|> $A $B", special_tokens=[("<|bos|>", 0)])
    base = json.loads(tok.to_str())
    assert len(base["model"]["vocab"]) == 300, len(base["model"]["vocab"])
    from gguf_regex import LLAMA3, QWEN2  # noqa: E402  (beside this script)
    variants = {
        "gpt2": (None, {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}),
        "qwen2": ({"type": "NFC"}, {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}),
        "llama3": (None, {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}),
    }
    for name, (norm, pre) in variants.items():
        d = os.path.join(FIX, "tok-" + name)
        os.makedirs(d, exist_ok=True)
        j = dict(base)
        j["normalizer"] = norm
        j["pre_tokenizer"] = pre
        with open(os.path.join(d, "tokenizer.json"), "w") as f:
            json.dump(j, f, ensure_ascii=False, indent=1)
        cfg = {"add_bos_token": True, "bos_token": "<|bos|>", "eos_token": "<|eos|>", "pad_token": "<|pad|>",
               "chat_template": CHATML, "tokenizer_class": "PreTrainedTokenizerFast"}
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        print("wrote", d)


def llama_logits(path, prompts, lora=None):
    import llama_cpp
    kw = dict(n_ctx=64, logits_all=True, verbose=False, type_k=0, type_v=0, n_threads=1, flash_attn=False, seed=0)
    if lora:
        kw["lora_path"] = lora
    llm = llama_cpp.Llama(model_path=path, **kw)
    out = []
    for p in prompts:
        llm.reset()
        llm.eval(p)
        out.append(np.array(llm.scores[len(p) - KEEP:len(p)], dtype=np.float32))
    greedy = []
    llm.reset()
    for t in llm.generate(prompts[0], temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
        greedy.append(t)
        if len(greedy) == 12:
            break
    del llm
    return np.stack(out), np.array(greedy, dtype=np.int32)


def quantize(src, dst, ftype):
    import llama_cpp
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    p.nthread = 1
    assert llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p)) == 0


def tensor_hashes(path):
    import gguf
    r = gguf.GGUFReader(path)
    h = np.stack([np.frombuffer(hashlib.sha256(t.data.tobytes()).digest(), dtype="<i4") for t in r.tensors])
    ty = np.array([int(t.tensor_type) for t in r.tensors], dtype=np.int32)
    return h, ty


def fixtures(keep):
    from safetensors.numpy import save_file
    os.makedirs(keep, exist_ok=True)
    env = dict(os.environ, HONE_GGUF_KEEP=keep, HONE_SHARED=os.path.join(ROOT, "..", "shared"))
    subprocess.run([os.path.join(ROOT, "bin", "test_gguf")], env=env, check=False)
    models = sorted({f.split(".")[0] for f in os.listdir(keep) if f.endswith(".f32.gguf")})
    for m in models:
        prompts = PROMPTS["stories" if m.startswith("stories") else "v300"]
        out = {}
        for t in TYPES:
            g = os.path.join(keep, f"{m}.{t}.gguf")
            lg, greedy = llama_logits(g, prompts)
            out[f"{t}.logits"] = lg
            out[f"{t}.greedy"] = greedy
            if t != "f32":
                q = os.path.join(keep, f"{m}.{t}.llamacpp.gguf")
                quantize(os.path.join(keep, f"{m}.f32.gguf"), q, FTYPE[t])
                h, ty = tensor_hashes(q)
                out[f"{t}.sha256"] = h
                out[f"{t}.types"] = ty
                mine, mty = tensor_hashes(g)
                same = (h.shape == mine.shape) and (h == mine).all() and (ty == mty).all()
                print(f"{m} {t}: {len(ty)} tensors, {'all equal to' if same else 'DIFFERENT from'} llama-quantize's")
            ref = out["f32.logits"]
            print(f"{m} {t}: llama.cpp vs f32 max rel {np.abs(lg - ref).max() / np.abs(ref).max():.3g}, greedy {greedy.tolist()}")
        lora = os.path.join(keep, f"{m}.lora.gguf")
        if os.path.exists(lora):
            lg, greedy = llama_logits(os.path.join(keep, f"{m}.f32.gguf"), prompts, lora=lora)
            out["lora.logits"] = lg
            out["lora.greedy"] = greedy
        out["prompts"] = np.array(prompts, dtype=np.int32)
        save_file(out, os.path.join(FIX, f"{m}.safetensors"))
        print("wrote", os.path.join(FIX, f"{m}.safetensors"))


def exact_gelu(libdir, keep):
    from safetensors.numpy import load_file, save_file
    if os.environ.get("LLAMA_CPP_LIB_PATH") != libdir:
        # llama_cpp loads its library once, at import: a fresh interpreter with the patched one
        env = dict(os.environ, LLAMA_CPP_LIB_PATH=libdir)
        subprocess.run([sys.executable, os.path.abspath(__file__), "exact-gelu", libdir, keep], env=env, check=True)
        return
    for f in sorted(os.listdir(FIX)):
        if not (f.startswith("tiny-gemma") and f.endswith(".safetensors")):
            continue
        m = f[:-len(".safetensors")]
        fx = load_file(os.path.join(FIX, f))
        lg, greedy = llama_logits(os.path.join(keep, f"{m}.f32.gguf"), PROMPTS["v300"])
        stock = fx["f32.logits"]
        print(f"{m}: exact-GELU llama.cpp vs stock max rel {np.abs(lg - stock).max() / np.abs(stock).max():.3g}, "
              f"greedy {'same' if (greedy == fx['f32.greedy']).all() else 'DIFFERENT'}")
        fx["f32.exact_gelu.logits"] = lg
        save_file(fx, os.path.join(FIX, f))
        print("wrote", os.path.join(FIX, f))


def tokenize_check(d, g):
    import llama_cpp
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    llm = llama_cpp.Llama(model_path=g, vocab_only=True, verbose=False)
    texts = [json.loads(l)["text"] for l in open(os.path.join(ROOT, "..", "shared", "tokenizers", "corpus.dev.jsonl"))]
    bad = 0
    for t in texts:
        a = tok.encode(t, add_special_tokens=False).ids
        b = llm.tokenize(t.encode(), add_bos=False, special=True)
        bad += a != b
    print(f"{d}: {len(texts) - bad}/{len(texts)} texts tokenized identically by llama.cpp and tokenizers")


def check(model_dir, adapter=None, prompt="Once upon a time, Lily saw a big dog."):
    import llama_cpp
    import torch
    import transformers
    hone = os.path.join(ROOT, "hone")
    tmp = "/tmp/hone-gguf-check"
    os.makedirs(tmp, exist_ok=True)
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    ids = tok(prompt).input_ids
    m = transformers.AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    with torch.no_grad():
        ref = m(torch.tensor([ids])).logits[0].numpy()
    hone_text = subprocess.run([hone, "generate", model_dir, "--prompt", prompt, "--max-new-tokens", "24", "--temperature", "0"],
                               capture_output=True, text=True).stdout.strip()
    for t in TYPES:
        g = os.path.join(tmp, f"model.{t}.gguf")
        subprocess.run([hone, "export", "gguf", model_dir, g, "--type", t], check=True, capture_output=True)
        llm = llama_cpp.Llama(model_path=g, n_ctx=128, logits_all=True, verbose=False, type_k=0, type_v=0, n_threads=1, flash_attn=False)
        lt = llm.tokenize(prompt.encode(), add_bos=True)
        llm.eval(ids)
        lg = np.array(llm.scores[:len(ids)])
        llm.reset()
        out = llm(prompt, max_tokens=24, temperature=0.0, top_k=1, repeat_penalty=1.0)["choices"][0]["text"]
        print(f"{t:7s} tokens {'same' if lt == ids else 'DIFFER'}; logits max rel vs transformers "
              f"{np.abs(lg - ref).max() / np.abs(ref).max():.2e}; greedy text: {out!r}")
        del llm
    print(f"hone generate --greedy: {hone_text!r}")
    if adapter:
        base = json.load(open(os.path.join(adapter, "adapter_config.json")))["base_model_name_or_path"]
        bg, lg_ = os.path.join(tmp, "base.f32.gguf"), os.path.join(tmp, "adapter.gguf")
        subprocess.run([hone, "export", "gguf", base, bg, "--type", "f32"], check=True, capture_output=True)
        subprocess.run([hone, "export", "gguf-lora", adapter, lg_], check=True, capture_output=True)
        merged = os.path.join(tmp, "merged")
        subprocess.run(["rm", "-rf", merged])
        subprocess.run([hone, "merge", adapter, merged], check=True, capture_output=True)
        mm = transformers.AutoModelForCausalLM.from_pretrained(merged, torch_dtype=torch.float32)
        with torch.no_grad():
            mref = mm(torch.tensor([ids])).logits[0].numpy()
        llm = llama_cpp.Llama(model_path=bg, lora_path=lg_, n_ctx=128, logits_all=True, verbose=False, type_k=0, type_v=0,
                              n_threads=1, flash_attn=False)
        llm.eval(ids)
        lg = np.array(llm.scores[:len(ids)])
        print(f"lora: llama.cpp base + --lora vs merged model (transformers) logits max rel {np.abs(lg - mref).max() / np.abs(mref).max():.2e}")


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    if sys.argv[1] == "tokenizers":
        tokenizers_fixture()
    elif sys.argv[1] == "fixtures":
        fixtures(sys.argv[2] if len(sys.argv) > 2 else "/tmp/hone-gguf-keep")
    elif sys.argv[1] == "exact-gelu":
        exact_gelu(os.path.abspath(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "/tmp/hone-gguf-keep")
    elif sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    elif sys.argv[1] == "tokenize":
        tokenize_check(sys.argv[2], sys.argv[3])
