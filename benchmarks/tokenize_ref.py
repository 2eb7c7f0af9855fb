#!/usr/bin/env python3
"""tokenize_ref.py — times the reference Hugging Face `tokenizers` library on the same corpus
hone's bench_tokenize uses: single-threaded encode (no special tokens) of every text, after one
warm-up pass, timed in process CPU seconds (as bench_tokenize does). Prints one line per tokenizer: `name load_s mb_per_s tokens_per_s tokens`.
Usage: tokenize_ref.py SHARED_DIR name...   (development tool; never needed by the build)"""
import json, os, sys, time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer  # noqa: E402


def main():
    shared, names = sys.argv[1], sys.argv[2:]
    with open(os.path.join(shared, "tokenizers", "corpus.dev.jsonl"), encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    for name in names:
        t0 = time.process_time()
        tok = Tokenizer.from_file(os.path.join(shared, "tokenizers", name, "tokenizer.json"))
        load = time.process_time() - t0
        for t in texts[:200]:  # warm-up
            tok.encode(t, add_special_tokens=False)
        best = None
        for _ in range(2):
            t0 = time.process_time()
            ntok = 0
            for t in texts:
                ntok += len(tok.encode(t, add_special_tokens=False).ids)
            dt = time.process_time() - t0
            best = dt if best is None else min(best, dt)
        print(f"{name} {load:.3f} {nbytes / best / 1e6:.3f} {ntok / best:.0f} {ntok}", flush=True)


if __name__ == "__main__":
    main()
