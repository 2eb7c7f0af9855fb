#!/usr/bin/env python3
"""spm_reference.py — writes tests/fixtures/spm_reference.jsonl: SentencePiece's own encodings
(sp.encode(text), no BOS) of a few dozen sentences with the stories260K tok512.model and the
Llama-2 tokenizer.model, which test_tokenizer compares with hone's spm_convert output.
Texts with literal control-token strings ("<s>") are left out: SentencePiece reads them as
text, a converted tokenizer.json as special tokens (as transformers' converter does).
Usage: spm_reference.py SHARED_DIR > tests/fixtures/spm_reference.jsonl  (development only)"""
import json
import sys

import sentencepiece as spm

TEXTS = [
    "Once upon a time, there was a little girl named Lily.",
    "She loved to play outside in the park.",
    "One day, she saw a big red ball. \"Can I play with it?\" she asked.",
    "Tom and Sam were best friends. They liked to run, jump and laugh!",
    "The sun was hot.  The dog was   very tired.",
    "   leading and trailing spaces   ",
    "tabs\tand\nnew\nlines\n\nhere",
    "Numbers: 0 7 42 1234567890 3.14159 -12",
    "It's Tim's toy; don't take it, won't you?",
    "Ünïcödé çafé naïve résumé",
    "日本語のテキスト and 中文 text",
    "Emoji 🙂👍🏽 and 🏳️‍🌈 flags",
    "Γειά σου Κόσμε",
    "Привет, мир!",
    "x",
    " ",
    "",
    "a\u00a0b\u00a0\u00a0c",
    "multiple     spaces     between     words",
    "CamelCaseWords and snake_case_words",
    "http://example.com/path?q=1&x=2",
    "The end.",
    "Mom said, \"Be careful!\" Lily nodded and smiled.",
    "supercalifragilisticexpialidocious",
    "ZZZZZZZZZZZZZZZZZZZZ",
    "!!! ??? ... ;;; :::",
    "\u2009thin space and \u3000 ideographic space",
    "Zero\u200bwidth",
]

LLAMA2_TEXTS = [
    "a\u00a0b",
    "x\u00a0\u00a0y",
    "price:\u00a0\u00a0\u00a0\u00a010\u00a0€",
    "Hello world, this is Llama.",
]


def main():
    shared = sys.argv[1]
    for name, path, texts in [
        ("stories260K", shared + "/models/stories260K/tok512.model", TEXTS),
        ("llama2", shared + "/tokenizers/llama2/tokenizer.model", LLAMA2_TEXTS),
    ]:
        sp = spm.SentencePieceProcessor(model_file=path)
        for t in texts:
            print(json.dumps({"model": name, "text": t, "ids": sp.encode(t)}, ensure_ascii=False))


if __name__ == "__main__":
    main()
