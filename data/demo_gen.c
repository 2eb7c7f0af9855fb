/* demo_gen.c — the data of `make demo`, generated from a seed: two-number
 * addition ("What is 23 + 45?" -> "68"), a rule anyone can check.
 *
 *   demo_gen make OUTDIR [SEED]   writes OUTDIR/tokenizer/ (a character-level
 *       tokenizer.json with ChatML tokens), OUTDIR/model.json (the tiny model's
 *       config.json), pretrain.jsonl (equations as plain text), sft.jsonl
 *       (conversations), dpo.jsonl (prompt, chosen = correct sum, rejected = a
 *       near miss), and the held-out eval_prompts.jsonl / eval_pairs.jsonl whose
 *       number pairs never appear in training.
 *   demo_gen score ANSWERS.jsonl GENERATED.jsonl
 *       prints the share of generated completions that state the right sum.
 *
 * It is a readable example of hone's inputs: every file is a format hone reads. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAXN 50 /* operands in [0, MAXN) */

static uint64_t sm(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* a pair is held out for evaluation by a hash of the pair, not of the seed */
static int held_out(int a, int b) {
    uint64_t s = (uint64_t)(a * 131 + b) * 7919u;
    return sm(&s) % 5 == 0;
}

static FILE *open_out(const char *dir, const char *name) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f) { fprintf(stderr, "demo_gen: cannot write %s\n", p); exit(1); }
    return f;
}

static void write_tokenizer(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s/tokenizer", dir);
    mkdir(p, 0755);
    FILE *f = open_out(p, "tokenizer.json");
    const char *special[] = {"<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"};
    /* every printable ASCII character and the newline is one token */
    fprintf(f, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [\n");
    for (int i = 0; i < 5; i++)
        fprintf(f, "    {\"id\": %d, \"content\": \"%s\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
                   "\"normalized\": false, \"special\": true}%s\n", i, special[i], i < 4 ? "," : "");
    fprintf(f, "  ],\n  \"normalizer\": null,\n  \"pre_tokenizer\": null,\n  \"post_processor\": null,\n"
               "  \"decoder\": {\"type\": \"Fuse\"},\n  \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null,\n"
               "    \"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": false,\n"
               "    \"byte_fallback\": false, \"ignore_merges\": false,\n    \"vocab\": {");
    for (int i = 0; i < 5; i++) fprintf(f, "%s\"%s\": %d", i ? ", " : "", special[i], i);
    int id = 5;
    fprintf(f, ", \"\\n\": %d", id++);
    for (int c = 32; c < 127; c++) {
        if (c == '"' || c == '\\') fprintf(f, ", \"\\%c\": %d", c, id++);
        else fprintf(f, ", \"%c\": %d", c, id++);
    }
    fprintf(f, "},\n    \"merges\": []\n  }\n}\n");
    fclose(f);
    f = open_out(p, "tokenizer_config.json");
    fprintf(f, "{\n  \"bos_token\": \"<s>\",\n  \"eos_token\": \"<|im_end|>\",\n  \"pad_token\": \"<pad>\",\n"
               "  \"add_bos_token\": false,\n  \"add_eos_token\": false,\n  \"model_max_length\": 128,\n"
               "  \"tokenizer_class\": \"PreTrainedTokenizerFast\"\n}\n");
    fclose(f);
    /* 5 specials + newline + 95 printable characters */
    f = open_out(dir, "model.json");
    fprintf(f, "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n  \"vocab_size\": %d,\n"
               "  \"hidden_size\": 128,\n  \"intermediate_size\": 384,\n  \"num_hidden_layers\": 4,\n"
               "  \"num_attention_heads\": 4,\n  \"num_key_value_heads\": 2,\n  \"head_dim\": 32,\n"
               "  \"max_position_embeddings\": 128,\n  \"rms_norm_eps\": 1e-5,\n  \"rope_theta\": 10000.0,\n"
               "  \"tie_word_embeddings\": true,\n  \"initializer_range\": 0.05,\n  \"bos_token_id\": 1,\n"
               "  \"eos_token_id\": 4,\n  \"pad_token_id\": 0,\n  \"torch_dtype\": \"float32\"\n}\n", id);
    fclose(f);
}

/* a wrong answer close to the right one: one off, ten off, or digits swapped */
static int near_miss(int sum, uint64_t *s) {
    for (;;) {
        int w;
        switch (sm(s) % 4) {
        case 0: w = sum + 1; break;
        case 1: w = sum - 1; break;
        case 2: w = sum + (sm(s) % 2 ? 10 : -10); break;
        default: w = (sum % 10) * 10 + sum / 10; break;
        }
        if (w >= 0 && w != sum) return w;
    }
}

static void make(const char *dir, uint64_t seed) {
    mkdir(dir, 0755);
    write_tokenizer(dir);
    FILE *pre = open_out(dir, "pretrain.jsonl"), *sft = open_out(dir, "sft.jsonl"), *dpo = open_out(dir, "dpo.jsonl"),
         *ep = open_out(dir, "eval_prompts.jsonl"), *epairs = open_out(dir, "eval_pairs.jsonl");
    uint64_t s = seed;
    int n_pre = 0, n_sft = 0, n_dpo = 0, n_eval = 0;
    /* pretraining text: equations of the training pairs, several per line */
    for (int k = 0; k < 3000; k++) {
        fputs("{\"text\": \"", pre);
        for (int j = 0; j < 4; j++) {
            int a, b;
            do { a = (int)(sm(&s) % MAXN); b = (int)(sm(&s) % MAXN); } while (held_out(a, b));
            fprintf(pre, "%s%d + %d = %d.", j ? " " : "", a, b, a + b);
        }
        fputs("\"}\n", pre);
        n_pre++;
    }
    for (int a = 0; a < MAXN; a++)
        for (int b = 0; b < MAXN; b++) {
            int sum = a + b;
            if (held_out(a, b)) {
                int w = near_miss(sum, &s);
                fprintf(ep, "{\"prompt\": \"What is %d + %d?\", \"answer\": \"%d\"}\n", a, b, sum);
                fprintf(epairs, "{\"prompt\": [{\"role\": \"user\", \"content\": \"What is %d + %d?\"}], "
                                "\"chosen\": [{\"role\": \"assistant\", \"content\": \"%d\"}], "
                                "\"rejected\": [{\"role\": \"assistant\", \"content\": \"%d\"}]}\n", a, b, sum, w);
                n_eval++;
                continue;
            }
            fprintf(sft, "{\"messages\": [{\"role\": \"user\", \"content\": \"What is %d + %d?\"}, "
                         "{\"role\": \"assistant\", \"content\": \"%d\"}]}\n", a, b, sum);
            n_sft++;
            int w = near_miss(sum, &s);
            fprintf(dpo, "{\"prompt\": [{\"role\": \"user\", \"content\": \"What is %d + %d?\"}], "
                         "\"chosen\": [{\"role\": \"assistant\", \"content\": \"%d\"}], "
                         "\"rejected\": [{\"role\": \"assistant\", \"content\": \"%d\"}]}\n", a, b, sum, w);
            n_dpo++;
        }
    fclose(pre); fclose(sft); fclose(dpo); fclose(ep); fclose(epairs);
    printf("demo data in %s: %d pretraining texts, %d SFT conversations, %d DPO pairs, %d held-out prompts\n", dir, n_pre, n_sft,
           n_dpo, n_eval);
}

/* the value of "key": "..." on a JSON line (no escapes in this demo's strings) */
static int field(const char *line, const char *key, char *out, size_t n) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": \"", key);
    const char *p = strstr(line, pat);
    if (!p) {
        snprintf(pat, sizeof pat, "\"%s\":\"", key);
        if (!(p = strstr(line, pat))) return -1;
    }
    p += strlen(pat);
    size_t k = 0;
    while (*p && *p != '"' && k + 1 < n) {
        if (*p == '\\' && p[1]) p++;
        out[k++] = *p++;
    }
    out[k] = 0;
    return 0;
}

/* the first integer in s */
static long first_int(const char *s) {
    while (*s && (*s < '0' || *s > '9')) s++;
    return *s ? strtol(s, NULL, 10) : -1;
}

static int score(const char *answers, const char *generated) {
    FILE *fa = fopen(answers, "r"), *fg = fopen(generated, "r");
    if (!fa || !fg) { fprintf(stderr, "demo_gen score: cannot open %s or %s\n", answers, generated); return 1; }
    char la[4096], lg[65536], want[64], got[4096];
    int n = 0, ok = 0;
    while (fgets(la, sizeof la, fa) && fgets(lg, sizeof lg, fg)) {
        if (field(la, "answer", want, sizeof want) < 0) continue;
        if (field(lg, "completion", got, sizeof got) < 0 && field(lg, "text", got, sizeof got) < 0) got[0] = 0;
        n++;
        ok += first_int(got) == atol(want);
    }
    fclose(fa);
    fclose(fg);
    printf("%.3f\n", n ? (double)ok / n : 0.0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "make")) { make(argv[2], argc > 3 ? strtoull(argv[3], NULL, 10) : 1); return 0; }
    if (argc == 4 && !strcmp(argv[1], "score")) return score(argv[2], argv[3]);
    fprintf(stderr, "usage: demo_gen make OUTDIR [SEED] | demo_gen score ANSWERS.jsonl GENERATED.jsonl\n");
    return 2;
}
