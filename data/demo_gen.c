/* demo_gen.c — the data of `make demo`, generated from a seed: instructions
 * about made-up words ("Write kato in capital letters." -> "KATO"), where
 * following the instruction is a rule anyone can check.
 *
 *   demo_gen make OUTDIR [SEED]   writes OUTDIR/tokenizer/ (a character-level
 *       tokenizer.json with ChatML tokens), OUTDIR/model.json (the tiny model's
 *       config.json), pretrain.jsonl (equations as plain text), sft.jsonl
 *       (conversations), dpo.jsonl (prompt, chosen = the instruction followed,
 *       rejected = ignored), and the held-out eval_prompts.jsonl / eval_pairs.jsonl
 *       whose words never appear in SFT or DPO data.
 *   demo_gen score ANSWERS.jsonl GENERATED.jsonl
 *       prints the share of generated completions that follow the instruction
 *       (capital letters; the same word twice) and the share exactly right.
 *
 * It is a readable example of hone's inputs: every file is a format hone reads. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static uint64_t sm(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
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

/* ---- the task: follow an instruction about a made-up word ----
 * "Write kato in capital letters."  -> "KATO"       (ignoring it: "kato")
 * "Write kato twice."               -> "kato kato"  (ignoring it: "kato")
 * The SFT demonstrations follow the instruction only 60% of the time (a careless
 * demonstrator); the DPO pairs always prefer following it. Words for evaluation
 * never appear in SFT or DPO data. */

#define NWORDS 800
#define NEVAL 120 /* the last NEVAL words are held out */
#define FOLLOW_PCT 60

static void make_word(char *w, uint64_t *s) {
    static const char *cons = "bdfgklmnprstvz", *vow = "aeiou";
    int syl = 2 + (int)(sm(s) % 2), k = 0;
    for (int i = 0; i < syl; i++) {
        w[k++] = cons[sm(s) % 14];
        w[k++] = vow[sm(s) % 5];
    }
    w[k] = 0;
}

static void answer(char *out, const char *w, int task, int follow) {
    if (!follow) { strcpy(out, w); return; }
    if (task == 0) {
        int i = 0;
        for (; w[i]; i++) out[i] = (char)(w[i] - 'a' + 'A');
        out[i] = 0;
    } else {
        size_t n = strlen(w);
        memcpy(out, w, n);
        out[n] = ' ';
        memcpy(out + n + 1, w, n + 1);
    }
}

static const char *instruction[2] = {"Write %s in capital letters.", "Write %s twice."};

static void make(const char *dir, uint64_t seed) {
    mkdir(dir, 0755);
    write_tokenizer(dir);
    FILE *pre = open_out(dir, "pretrain.jsonl"), *sft = open_out(dir, "sft.jsonl"), *dpo = open_out(dir, "dpo.jsonl"),
         *ep = open_out(dir, "eval_prompts.jsonl"), *epairs = open_out(dir, "eval_pairs.jsonl");
    uint64_t s = seed;
    static char words[NWORDS][16];
    for (int i = 0; i < NWORDS; i++) {
        int dup;
        do {
            make_word(words[i], &s);
            dup = 0;
            for (int j = 0; j < i; j++) dup |= !strcmp(words[i], words[j]);
        } while (dup);
    }
    int ntrain = NWORDS - NEVAL, n_pre = 0, n_sft = 0, n_dpo = 0, n_eval = 0;
    char a[64], r[64], p[128];
    /* pretraining text: words, their capitals and repetitions, as plain text (all words) */
    for (int k = 0; k < 4000; k++) {
        fputs("{\"text\": \"", pre);
        for (int j = 0; j < 4; j++) {
            const char *w = words[sm(&s) % NWORDS];
            int t = (int)(sm(&s) % 2);
            answer(a, w, t, 1);
            fprintf(pre, "%s%s: %s.", j ? " " : "", w, a);
        }
        fputs("\"}\n", pre);
        n_pre++;
    }
    for (int i = 0; i < NWORDS; i++)
        for (int t = 0; t < 2; t++) {
            const char *w = words[i];
            snprintf(p, sizeof p, instruction[t], w);
            answer(a, w, t, 1);
            answer(r, w, t, 0);
            if (i >= ntrain) {
                fprintf(ep, "{\"prompt\": \"%s\", \"answer\": \"%s\", \"task\": \"%s\"}\n", p, a, t ? "twice" : "capitals");
                fprintf(epairs, "{\"prompt\": [{\"role\": \"user\", \"content\": \"%s\"}], \"chosen\": [{\"role\": \"assistant\", "
                                "\"content\": \"%s\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"%s\"}]}\n", p, a, r);
                n_eval++;
                continue;
            }
            int follow = (int)(sm(&s) % 100) < FOLLOW_PCT;
            fprintf(sft, "{\"messages\": [{\"role\": \"user\", \"content\": \"%s\"}, {\"role\": \"assistant\", \"content\": \"%s\"}]}\n", p,
                    follow ? a : r);
            n_sft++;
            fprintf(dpo, "{\"prompt\": [{\"role\": \"user\", \"content\": \"%s\"}], \"chosen\": [{\"role\": \"assistant\", "
                         "\"content\": \"%s\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"%s\"}]}\n", p, a, r);
            n_dpo++;
        }
    fclose(pre); fclose(sft); fclose(dpo); fclose(ep); fclose(epairs);
    printf("demo data in %s: %d pretraining texts, %d SFT conversations (%d%% follow the instruction), %d DPO pairs, "
           "%d held-out prompts\n", dir, n_pre, n_sft, FOLLOW_PCT, n_dpo, n_eval);
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

/* Does the answer follow the instruction? capitals: one word of capital letters;
 * twice: the same lowercase word two times. */
static int follows(const char *task, const char *got) {
    if (!strcmp(task, "capitals")) {
        if (!*got) return 0;
        for (const char *c = got; *c; c++)
            if (*c < 'A' || *c > 'Z') return 0;
        return 1;
    }
    const char *sp = strchr(got, ' ');
    if (!sp || sp == got) return 0;
    size_t n = (size_t)(sp - got);
    for (size_t i = 0; i < n; i++)
        if (got[i] < 'a' || got[i] > 'z') return 0;
    return strlen(sp + 1) == n && !strncmp(got, sp + 1, n);
}

static int score(const char *answers, const char *generated) {
    FILE *fa = fopen(answers, "r"), *fg = fopen(generated, "r");
    if (!fa || !fg) { fprintf(stderr, "demo_gen score: cannot open %s or %s\n", answers, generated); return 1; }
    char la[4096], lg[65536], want[64], task[32], got[4096];
    int n = 0, ok = 0, exact = 0;
    while (fgets(la, sizeof la, fa) && fgets(lg, sizeof lg, fg)) {
        if (field(la, "answer", want, sizeof want) < 0 || field(la, "task", task, sizeof task) < 0) continue;
        if (field(lg, "completion", got, sizeof got) < 0) got[0] = 0;
        size_t L = strlen(got);
        while (L && (got[L - 1] == ' ' || got[L - 1] == '\n')) got[--L] = 0;
        n++;
        ok += follows(task, got);
        exact += !strcmp(got, want);
    }
    fclose(fa);
    fclose(fg);
    /* share following the instruction, share exactly right (the word copied too) */
    printf("%.3f %.3f\n", n ? (double)ok / n : 0.0, n ? (double)exact / n : 0.0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "make")) { make(argv[2], argc > 3 ? strtoull(argv[3], NULL, 10) : 1); return 0; }
    if (argc == 4 && !strcmp(argv[1], "score")) return score(argv[2], argv[3]);
    fprintf(stderr, "usage: demo_gen make OUTDIR [SEED] | demo_gen score ANSWERS.jsonl GENERATED.jsonl\n");
    return 2;
}
