#!/usr/bin/env python3
"""random_diff.py — differential test of `hone tokenize --jsonl` against the reference
`tokenizers` library on random adversarial texts (letters, digits, whitespace runs, CRLF,
accents, CJK, emoji/ZWJ, U+00A0, combining marks, contractions, ▁/Ġ, and literal special-token
strings). Development tool; prints per tokenizer how many texts differ.
Usage: random_diff.py HONE_BIN SHARED_DIR [seed] [count]
Known difference: llama2's added tokens are `normalized: true`; tokenizers 0.23 decodes them by
their normalized form ("▁<s>"), while the library that produced expected.dev.jsonl (which hone
follows) decodes them by content ("<s>"), so a few llama2 `decoded` strings differ."""
import json
import random
import subprocess
import sys

from tokenizers import Tokenizer

POOLS = ["abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " ", "  ", "\t", "\n", "\r\n",
         "\n\n", ".,;:!?'\"-_()[]{}<>/\\|@#$%^&*+=~`", "éèàçñüöäßÉÑ", "中文字符日本語한국어", "ΑΒΓαβγЖжШщ",
         "🙂👍🏽🏳️‍🌈❤️", "\u00a0\u2009\u3000\u200b\u200d", "'s 't 're 've 'm 'll 'd", "ﬁ½①Ｆｕｌｌ", "\u0301\u0308",
         "▁", "ĠĊ"]
SPECIALS = ["<s>", "</s>", "<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<bos>", "<eos>",
            "<start_of_turn>", "<end_of_turn>", "<|begin_of_text|>", "<|eot_id|>", "<|user|>", "<|assistant|>",
            "<|end|>", "<pad>", "[INST]", "<<SYS>>", "<|endofprompt|>", "<mask>"]
NAMES = ["llama2", "mistral", "llama3", "gemma3", "qwen3", "gpt2", "smollm", "phi3", "gpt4o"]


def random_text(rng):
    parts = []
    for _ in range(rng.randint(0, 40)):
        r = rng.random()
        if r < 0.08:
            parts.append(rng.choice(SPECIALS))
        elif r < 0.5:
            parts.append("".join(rng.choice(POOLS[0] + POOLS[1]) for _ in range(rng.randint(1, 8))))
        else:
            p = rng.choice(POOLS)
            parts.append("".join(rng.choice(p) for _ in range(rng.randint(1, 4))))
    return "".join(parts)


def main():
    hone, shared = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    rng = random.Random(seed)
    texts = [random_text(rng) for _ in range(count)]
    inp = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts).encode()
    for name in NAMES:
        path = f"{shared}/tokenizers/{name}"
        tok = Tokenizer.from_file(f"{path}/tokenizer.json")
        out = subprocess.run([hone, "tokenize", path, "--jsonl"], input=inp, capture_output=True, check=True).stdout
        mine = [json.loads(line) for line in out.decode().splitlines()]
        bad_ids = bad_dec = 0
        for t, m in zip(texts, mine):
            ids = tok.encode(t, add_special_tokens=False).ids
            bad_ids += ids != m["ids"] or tok.encode(t).ids != m["ids_special"]
            bad_dec += tok.decode(ids, skip_special_tokens=False) != m["decoded"]
        print(f"{name:8s} {count} texts: ids differ {bad_ids}, decoded differ {bad_dec}")


if __name__ == "__main__":
    main()
