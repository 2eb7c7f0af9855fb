#!/usr/bin/env python3
"""AutoTokenizer on the directories hone writes (issue 12, defects 2 and 8).

1. Converts ../shared/models/stories260K/tok512.model and ../shared/tokenizers/llama2/tokenizer.model
   with `hone tokenize --convert` (the converter `hone convert` uses), loads each directory with
   transformers' AutoTokenizer and writes the ids it gives (special tokens added, as a training row is
   encoded) for: the first 150 texts of ../shared/tokenizers/corpus.dev.jsonl (HH-RLHF dialogues: runs of
   spaces, newlines), every later corpus text containing "</s>", and a few written cases. Fixture:
   tests/fixtures/hf_files/autotok_<name>.jsonl, one line per text: {"line": N} (0-based corpus line) or
   {"text": T}, and "ids".
2. For each built-in chat template, takes a directory hone trained (`hone sft`, 1 step, written by this
   script through the hone binary: final/ of a stories260K run with chat_template NAME) and writes
   AutoTokenizer.from_pretrained(final).apply_chat_template(messages, tokenize=True) for a few
   conversations to tests/fixtures/hf_files/chat_<name>.jsonl ({"messages", "add_generation_prompt",
   "ids"}), plus final/generation_config.json's bos/eos/pad as transformers reads them
   (GenerationConfig.from_pretrained) in tests/fixtures/hf_files/generation_<name>.json.

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hone", default=os.path.join(ROOT, "hone"))
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    autotok(os.path.abspath(a.hone))


if __name__ == "__main__":
    main()
