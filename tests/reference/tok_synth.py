#!/usr/bin/env python3
"""tok_synth.py — small synthetic tokenizers exercising the components the nine real ones do
not (Metaspace, Digits, every Split behavior and invert, Punctuation, Whitespace, WhitespaceSplit,
NFKC/NFKD/NFD/StripAccents/Lowercase/Strip, Replace with a regex, fuse_unk, continuing_subword_prefix / end_of_word_suffix, unk without fuse, added tokens with
lstrip / rstrip / single_word, ByteLevel add_prefix_space, TemplateProcessing with BOS+EOS,
post-processor Sequence), trained with the reference `tokenizers` library on a few paragraphs,
with the reference's encodings of test texts.
Writes tests/fixtures/tokenizers/<name>/tokenizer.json and expected.jsonl (lines
{"text", "ids", "ids_special", "decoded"}). Usage: tok_synth.py SHARED_DIR  (development only)"""
import json
import os
import sys

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tokenizers import AddedToken

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "tokenizers")

EXTRA = [
    "Hello-world  foo--bar 12345 x1y22z333",
    "  leading\tand trailing  ",
    "ÉCOLE café Ｆｕｌｌｗｉｄｔｈ ﬁne ½ ① Straße",
    "<special>text<special> and [WORD] in [WORD]s and x[WORD]",
    "a  <L>b c<R>   d <L> <R> e",
    "unknown symbols: ☃ ✈ 🚀 ⌘",
    "numbers 3.14 and 2,718 and ٣٤٥",
    "",
    " ",
    "-",
    "aaa---bbb   ccc",
    "CamelCase snake_case kebab-case",
]


def build(name, shared, texts):
    train = texts[:120]
    if name == "metaspace":
        tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=False))
        tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
        tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
        trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=60)
        tok.train_from_iterator(train, trainer)
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
        tok.add_special_tokens([AddedToken("<special>", normalized=False, special=True)])
        tok.add_tokens([AddedToken("[WORD]", single_word=True, normalized=False),
                        AddedToken("<L>", lstrip=True, normalized=False),
                        AddedToken("<R>", rstrip=True, normalized=False)])
    elif name == "splits":
        tok = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
        tok.normalizer = normalizers.Sequence([
            normalizers.NFKD(), normalizers.Strip(left=True, right=True),
            normalizers.Replace(Regex("\\s{2,}"), " "), normalizers.Replace("x", "X")])
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(" ", behavior="removed"),
            pre_tokenizers.Digits(individual_digits=False),
            pre_tokenizers.Split(Regex("-+"), behavior="merged_with_next"),
            pre_tokenizers.Split(Regex("[,.]"), behavior="merged_with_previous"),
            pre_tokenizers.Split(Regex("[A-Z]"), behavior="contiguous"),
            pre_tokenizers.Split(Regex("[a-z]+"), behavior="isolated", invert=True),
        ])
        tok.decoder = decoders.Sequence([decoders.Replace("</w>", " "), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
        trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["[UNK]"], continuing_subword_prefix="##",
                                      end_of_word_suffix="</w>", limit_alphabet=80)
        tok.train_from_iterator(train, trainer)
    elif name in ("punct", "wsregex"):
        tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
        tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()])
        if name == "punct":
            tok.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(behavior="isolated"),
                pre_tokenizers.Digits(individual_digits=True)])
        else:
            tok.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation(behavior="merged_with_previous")])
        tok.decoder = decoders.Fuse()
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>"], limit_alphabet=50)
        tok.train_from_iterator(train, trainer)
    else:  # bytelevel
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<|bos|>", "<|eos|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(train, trainer)
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single="<|bos|> $A <|eos|>",
                                          special_tokens=[("<|bos|>", 0), ("<|eos|>", 1)])])
        tok.add_special_tokens([AddedToken("<|im_start|>", normalized=False, special=True)])
    return tok


def main():
    shared = sys.argv[1]
    with open(os.path.join(shared, "tokenizers", "corpus.dev.jsonl"), encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    tests = [t for t in texts if len(t) < 400][::12][:40] + EXTRA
    for name in ["metaspace", "splits", "bytelevel", "punct", "wsregex"]:
        tok = build(name, shared, texts)
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        tok.save(os.path.join(d, "tokenizer.json"))
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        with open(os.path.join(d, "expected.jsonl"), "w", encoding="utf-8") as f:
            for t in tests:
                ids = tok.encode(t, add_special_tokens=False).ids
                rec = {"text": t, "ids": ids, "ids_special": tok.encode(t).ids,
                       "decoded": tok.decode(ids, skip_special_tokens=False)}
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        print(name, tok.get_vocab_size(), len(tests))


if __name__ == "__main__":
    main()
