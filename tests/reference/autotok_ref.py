#!/usr/bin/env python3
"""AutoTokenizer on the directories hone writes (issue 12, defects 2 and 8).

1. Converts ../shared/models/stories260K/tok512.model and ../shared/tokenizers/llama2/tokenizer.model
   with `hone tokenize --convert` (the converter `hone convert` uses), loads each directory with
   transformers' AutoTokenizer and writes the ids it gives (special tokens added, as a training row is
   encoded) for: the first 150 texts of ../shared/tokenizers/corpus.dev.jsonl (HH-RLHF dialogues: runs of
   spaces, newlines), every later corpus text containing "</s>", and a few written cases. Fixture:
   tests/fixtures/hf_files/autotok_<name>.jsonl, one line per text: {"line": N} (0-based corpus line) or
   {"text": T}, and "ids".
2. For each built-in chat template NAME (and chatml with add_chat_tokens: chatml_added), trains with the hone binary (`hone sft`, 1 step on the
   converted stories260K and tests/fixtures/hf_files/chat_train.jsonl, chat_template NAME; test_hf_files.c
   runs the same configuration) and writes tests/fixtures/hf_files/chat_<NAME>.jsonl: a first line with
   final/'s chat_template and the bos/eos/pad ids GenerationConfig.from_pretrained(final) reads, then
   one line per rendering: AutoTokenizer.from_pretrained(final).apply_chat_template(messages,
   tokenize=True, add_generation_prompt=G) as {"messages", "add_generation_prompt", "ids"}, for the
   first five conversations of tests/fixtures/chat/chat_templates.json.

usage: autotok_ref.py [--hone PATH]   (default: ./hone of the repository root, built)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SHARED = os.path.join(ROOT, "..", "shared")
OUT = os.path.join(ROOT, "tests", "fixtures", "hf_files")

TOKENIZERS = {
    "stories260K": os.path.join(SHARED, "models", "stories260K", "tok512.model"),
    "llama2": os.path.join(SHARED, "tokenizers", "llama2", "tokenizer.model"),
}
WRITTEN = [
    "a  b   c</s>d", "Hello</s> world  </s>", "  leading spaces", "trailing spaces   ", "x\n\n  y\t\tz",
    "</s></s>", "<s> in text", "tab\tand   three spaces", "Ünïcödé  ✓  日本語", "",
]


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")


def texts():
    with open(os.path.join(SHARED, "tokenizers", "corpus.dev.jsonl")) as f:
        corpus = [json.loads(l)["text"] for l in f]
    sel = [({"line": i}, corpus[i]) for i in range(150)]
    sel += [({"line": i}, t) for i, t in enumerate(corpus) if i >= 150 and "</s>" in t]
    sel += [({"text": t}, t) for t in WRITTEN]
    return sel


def autotok(hone):
    from transformers import AutoTokenizer

    sel = texts()
    for name, model in TOKENIZERS.items():
        d = tempfile.mkdtemp(prefix="hone-autotok-")
        subprocess.run([hone, "tokenize", "--convert", model, d], check=True, capture_output=True)
        with open(os.path.join(d, "tokenizer_config.json")) as f:
            cls = json.load(f)["tokenizer_class"]
        tk = AutoTokenizer.from_pretrained(d)
        rows = [dict(key, ids=tk(t)["input_ids"]) for key, t in sel]
        write_jsonl(os.path.join(OUT, f"autotok_{name}.jsonl"), rows)
        print(f"autotok_{name}: {len(rows)} texts, tokenizer_class {cls} -> {type(tk).__name__}, "
              f"{sum(len(r['ids']) for r in rows)} ids")


TEMPLATES = ["chatml", "chatml_added", "llama2", "llama3", "gemma", "zephyr"]  # _added: add_chat_tokens: true
TRAIN_ROWS = [
    {"messages": [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi there."}]},
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me a story."},
                  {"role": "assistant", "content": "Once upon a time."}]},
]


def sft_yaml(model_dir, out_dir, data, case):
    """The configuration test_hf_files.c also writes: one SFT step on data with the case's chat_template
    (chatml_added: chatml with add_chat_tokens, so the saved tokenizer has two added special tokens)."""
    return (f"model_name_or_path: {model_dir}\noutput_dir: {out_dir}\ndatasets:\n  - path: {data}\n"
            f"chat_template: {case.split('_')[0]}\nmax_steps: 1\nper_device_train_batch_size: 2\nsave_strategy: \"no\"\nseed: 1\n"
            + ("add_chat_tokens: true\n" if case.endswith("_added") else ""))


def chat(hone):
    from transformers import AutoTokenizer, GenerationConfig

    data = os.path.join(OUT, "chat_train.jsonl")
    write_jsonl(data, TRAIN_ROWS)
    tmp = tempfile.mkdtemp(prefix="hone-chatfinal-")
    base = os.path.join(tmp, "stories260K")
    subprocess.run([hone, "convert", "llama2c", os.path.join(SHARED, "models", "stories260K", "stories260K.bin"), base,
                    "--tokenizer", TOKENIZERS["stories260K"]], check=True, capture_output=True)
    with open(os.path.join(ROOT, "tests", "fixtures", "chat", "chat_templates.json")) as f:
        convs = json.load(f)["conversations"][:5]  # strictly alternating after an optional system turn (llama2 / gemma raise otherwise)
    for name in TEMPLATES:
        out = os.path.join(tmp, name)
        yaml = os.path.join(tmp, name + ".yaml")
        with open(yaml, "w") as f:
            f.write(sft_yaml(base, out, data, name))
        subprocess.run([hone, "sft", yaml], check=True, capture_output=True)
        final = os.path.join(out, "final")
        tk = AutoTokenizer.from_pretrained(final)
        rows = []
        for conv in convs:
            for gen in (False, True):
                if gen and conv[-1]["role"] == "assistant":
                    continue
                ids = tk.apply_chat_template(conv, tokenize=True, add_generation_prompt=gen)
                if hasattr(ids, "keys"):
                    ids = ids["input_ids"]
                rows.append({"messages": conv, "add_generation_prompt": gen, "ids": list(ids)})
        g = GenerationConfig.from_pretrained(final)
        with open(os.path.join(final, "tokenizer_config.json")) as f:
            template = json.load(f)["chat_template"]
        head = {"template": name, "chat_template": template, "bos_token_id": g.bos_token_id,
                "eos_token_id": g.eos_token_id, "pad_token_id": g.pad_token_id}
        write_jsonl(os.path.join(OUT, f"chat_{name}.jsonl"), [head] + rows)
        print(f"chat_{name}: {len(rows)} renderings via apply_chat_template on hone's final/, "
              f"eos {g.eos_token_id}, {sum(len(r['ids']) for r in rows)} ids")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hone", default=os.path.join(ROOT, "hone"))
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    autotok(os.path.abspath(a.hone))
    chat(os.path.abspath(a.hone))


if __name__ == "__main__":
    main()
