/* cli/cmd_eval.c — `hone eval`: how a (DPO-trained) model ranks held-out preference
 * pairs against a reference model, and perplexity on text. Completions are scored
 * with the training forward (model_forward + model_head, forward only): the sum of
 * log p(completion token | everything before) over the completion.
 *
 *   implicit reward r = beta * (logp_model - logp_ref)      (DPO)
 *   accuracy = mean[r_chosen > r_rejected], margin = mean[r_chosen - r_rejected]
 *
 * Pairs are read with dataset.h (every DPO row format) and tokenized as `hone dpo`
 * (and TRL's DPOTrainer) do: text rows as prompt + completion + EOS, conversational
 * rows rendered with the chat template. */
#include "cli/commands.h"
#include "model/lora.h"
#include "cli/gen_cli.h"
#include "simd/kernels.h"
#include "model/transformer.h"
#include "base/util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "chat/template.h"
#include "data/dataset.h"

static void usage(FILE *f) {
    fprintf(f, "Usage: hone eval MODEL_DIR --pairs FILE.jsonl --ref REF_DIR|none [--beta B] [--out FILE.jsonl]\n"
               "       hone eval MODEL_DIR --perplexity FILE.jsonl\n\n"
               "--pairs: preference rows in any format hone dpo reads ({\"prompt\", \"chosen\", \"rejected\"} strings or\n"
               "message lists, or chosen/rejected sharing an implicit prompt). Prints the preference accuracy\n"
               "(fraction of pairs with beta*((logp_c - ref_logp_c) - (logp_r - ref_logp_r)) > 0), the mean\n"
               "margin and the mean rewards (--ref none: reference-free, ref_logp = 0); --out writes one JSON\n"
               "line of log-probs and rewards per pair.\n"
               "--perplexity: {\"text\"} rows; prints exp(mean negative log-likelihood per predicted token).\n"
               "Progress (pairs or sequences scored, elapsed time, ETA) goes to standard error.\n"
               "Options:\n"
               "  --beta B               DPO beta (default 0.1)\n"
               "  --chat-template NAME   template for conversational rows (default auto: the model's, else chatml)\n"
               "  --format NAME          row format (default auto; standard, conversational, implicit, ...)\n"
               "  --batch-size N         sequences per forward pass (default 8)\n"
               "  --json                 print the summary as one JSON object\n"
               "  --threads N            threads\n");
}

/* One scored sequence: tokens, and the first position whose token is scored. */
typedef struct { int32_t *ids; int n, first; } scored;

/* The progress line on stderr, like training's: a bar redrawn in place on a terminal,
 * else a line every 10 s, and always one when a pass ends. Units are sequences; shown
 * as pairs (2 sequences each) or sequences (perplexity windows). */
typedef struct {
    const char *pass;  /* "model", "reference", "perplexity" */
    const char *unit;  /* "pairs" or "sequences" */
    int per_unit;      /* sequences per unit */
    long pass_done, pass_total, done, total; /* sequences: this pass, and over all passes */
    double t0, last;
    int tty;
} eval_progress;

static void progress_show(eval_progress *p, long add) {
    p->pass_done += add;
    p->done += add;
    double now = hone_now(), el = now - p->t0;
    int end = p->pass_done >= p->pass_total;
    if (!end && now - p->last < (p->tty ? 0.5 : 10.0)) return;
    p->last = now;
    double eta = p->done > 0 ? el / p->done * (p->total - p->done) : 0;
    fprintf(stderr, "%seval: %s %ld/%ld %s, %.0fs elapsed, ETA %.0fs%s", p->tty ? "\r" : "", p->pass, p->pass_done / p->per_unit,
            p->pass_total / p->per_unit, p->unit, el, eta, p->tty && !end ? "   " : "\n");
}

/* Sum of log p over tokens [first, n) of each sequence; results in logp (n_seq). */
static int score(const hone_model *m, scored *seqs, int n_seq, int bs, double *logp, long *count, eval_progress *pr,
                 const char *pass, hone_error *err) {
    pr->pass = pass;
    pr->pass_done = 0;
    pr->pass_total = n_seq;
    int T = 1;
    for (int i = 0; i < n_seq; i++) T = seqs[i].n > T ? seqs[i].n : T;
    hone_acts a;
    if (acts_init(&a, &m->cfg, bs, T, 0, 0, err) < 0) return -1;
    int32_t *labels = malloc(sizeof(int32_t) * T);
    if (!labels) { acts_free(&a); return hone_fail(err, "out of memory"); }
    for (int s0 = 0; s0 < n_seq; s0 += bs) {
        int nb = n_seq - s0 < bs ? n_seq - s0 : bs, Tb = 1;
        for (int r = 0; r < nb; r++) Tb = seqs[s0 + r].n > Tb ? seqs[s0 + r].n : Tb;
        hone_batch b;
        if (batch_alloc(&b, nb, Tb) < 0) { free(labels); acts_free(&a); return hone_fail(err, "out of memory"); }
        batch_reset(&b, 0);
        for (int r = 0; r < nb; r++) {
            const scored *q = &seqs[s0 + r];
            for (int t = 0; t < q->n; t++) labels[t] = t + 1 < q->n && t + 1 >= q->first ? q->ids[t + 1] : HONE_IGNORE_INDEX;
            batch_put_doc(&b, r, 0, q->ids, q->n, 0, labels);
        }
        model_forward(m, &a, &b);
        model_head(m, &a, &b, NULL, 1.0f, NULL);
        for (int r = 0; r < nb; r++) {
            double s = 0;
            long c = 0;
            for (int t = 0; t < Tb; t++)
                if (b.labels[(size_t)r * Tb + t] >= 0) { s += a.tok_logp[(size_t)r * Tb + t]; c++; }
            logp[s0 + r] = s;
            if (count) count[s0 + r] = c;
        }
        batch_free(&b);
        progress_show(pr, nb);
    }
    free(labels);
    acts_free(&a);
    return 0;
}

/* chosen and rejected of one pair as scored sequences, tokenized as hone dpo
 * (pipeline.c) and TRL do: render prompt, prompt+chosen, prompt+rejected with
 * chat_render_dpo (text rows: concatenated, EOS appended), tokenize each whole, and
 * score what follows the longest common token prefix of the three. */
static int build_pair(const gen_model *g, const chat_template *t, const hone_dpo_example *exp, int max_len, scored *out,
                      hone_error *err) {
    const hone_dpo_example ex = *exp;
    int is_text = ex.is_text;
    chat_dpo_text dt;
    if (chat_render_dpo(t, &ex, NULL, &dt, err) < 0) return -1;
    int32_t *pi = NULL, *ci = NULL, *ri = NULL;
    size_t np = 0, nc = 0, nr = 0;
    int add = tokenizer_add_bos(g->tok) && is_text, rc = -1; /* rendered templates carry their BOS text */
    if (tokenizer_encode(g->tok, dt.prompt, dt.prompt_len, add, &pi, &np, err) < 0 ||
        tokenizer_encode(g->tok, dt.chosen, dt.chosen_len, add, &ci, &nc, err) < 0 ||
        tokenizer_encode(g->tok, dt.rejected, dt.rejected_len, add, &ri, &nr, err) < 0)
        goto done;
    size_t P = 0;
    while (P < np && P < nc && P < nr && pi[P] == ci[P] && pi[P] == ri[P]) P++;
    if (P >= nc || P >= nr) { hone_fail(err, "empty %s completion after tokenization", P >= nc ? "chosen" : "rejected"); goto done; }
    out[0] = (scored){ci, nc > (size_t)max_len ? max_len : (int)nc, P > 0 ? (int)P : 1};
    out[1] = (scored){ri, nr > (size_t)max_len ? max_len : (int)nr, P > 0 ? (int)P : 1};
    ci = ri = NULL;
    rc = 0;
done:
    chat_dpo_text_free(&dt);
    free(pi); free(ci); free(ri);
    return rc;
}

static double mean(const double *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return n ? s / n : 0;
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *pairs = NULL, *ref = NULL, *ppl = NULL, *outp = NULL, *tmpl = NULL, *format = "auto";
    double beta = 0.1;
    int bs = 8, threads = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) { usage(stdout); return 0; }
        if (!strcmp(o, "--json")) { json = 1; continue; }
        if (o[0] != '-') {
            if (model) { fprintf(stderr, "hone eval: unexpected argument '%s'\n", o); return 2; }
            model = o;
            continue;
        }
        if (!v) { fprintf(stderr, "hone eval: %s needs a value (see --help)\n", o); return 2; }
        char *end = NULL;
        if (!strcmp(o, "--pairs")) pairs = v;
        else if (!strcmp(o, "--ref")) ref = v;
        else if (!strcmp(o, "--perplexity")) ppl = v;
        else if (!strcmp(o, "--out")) outp = v;
        else if (!strcmp(o, "--chat-template")) tmpl = v;
        else if (!strcmp(o, "--format")) format = v;
        else if (!strcmp(o, "--beta")) {
            beta = strtod(v, &end);
            if (end == v || *end || !(beta > 0) || !isfinite(beta)) { fprintf(stderr, "hone eval: --beta: expected a number > 0, got '%s'\n", v); return 2; }
        } else if (!strcmp(o, "--batch-size") || !strcmp(o, "--threads")) {
            long x = strtol(v, &end, 10);
            if (end == v || *end || x < 1 || x > 4096) { fprintf(stderr, "hone eval: %s: expected a positive integer, got '%s'\n", o, v); return 2; }
            if (!strcmp(o, "--threads")) threads = (int)x; else bs = (int)x;
        } else { fprintf(stderr, "hone eval: unknown option '%s' (see --help)\n", o); return 2; }
        i++;
    }
    if (!model || (!pairs && !ppl)) { fprintf(stderr, "hone eval: need MODEL_DIR and --pairs FILE --ref REF and/or --perplexity FILE (see --help)\n"); return 2; }
    if (pairs && !ref) { fprintf(stderr, "hone eval: --pairs needs --ref REF_DIR (the reference model)\n"); return 2; }
    hone_error err = {{0}};
    kernels_init();
    if (gen_threads_init(threads, &err) < 0) { fprintf(stderr, "hone eval: %s\n", err.msg); return 1; }
    gen_model g;
    if (gen_model_load(&g, model, NULL, &err) < 0) { fprintf(stderr, "hone eval: %s\n", err.msg); return 1; }
    chat_template tpl; /* renders the pairs; without --chat-template only its EOS is used */
    memset(&tpl, 0, sizeof tpl);
    if (chat_template_load(&tpl, tmpl ? tmpl : "auto", model, &err) < 0) {
        fprintf(stderr, "hone eval: %s\n", err.msg);
        gen_model_free(&g);
        return 1;
    }
    int max_len = g.m.cfg.max_position_embeddings > 0 ? g.m.cfg.max_position_embeddings : 2048;
    int rc = 1, n = 0, nkeys = 0, n_seqs = 0; /* rows read (of nkeys strings), seqs holding ids */
    char **rows = NULL;
    scored *seqs = NULL;
    double *lp = NULL;
    long *cnt = NULL;
    hone_model rm = {0};
    FILE *out = NULL;
    hone_dataset ds;
    memset(&ds, 0, sizeof ds);
    hone_dpo_example *ex = NULL;
    if (json) printf("{");
    if (pairs) {
        /* any DPO row format hone dpo reads (standard strings, conversational, implicit prompt) */
        hone_data_source src;
        memset(&src, 0, sizeof src);
        src.path = (char *)pairs;
        src.format = (char *)format;
        src.number_of_samples = -1;
        src.ratio = -1;
        hone_source_report rep;
        void *exv = NULL;
        long nl = 0;
        ds.kind = HONE_DPO;
        if (dataset_read_source(&ds, &src, 0, 0, &exv, &nl, &rep, &err) < 0) { fprintf(stderr, "hone eval: %s\n", err.msg); goto done; }
        ex = exv;
        n = (int)nl;
        if (n == 0) { fprintf(stderr, "hone eval: %s: no pairs\n", pairs); goto done; }
        seqs = calloc((size_t)2 * n, sizeof *seqs);
        n_seqs = seqs ? 2 * n : 0;
        lp = calloc((size_t)4 * n, sizeof *lp);
        if (!seqs || !lp) { fprintf(stderr, "hone eval: out of memory\n"); goto done; }
        for (int i = 0; i < n; i++)
            if (build_pair(&g, &tpl, &ex[i], max_len, &seqs[2 * i], &err) < 0) {
                fprintf(stderr, "hone eval: %s:%ld: %s\n", pairs, ex[i].line, err.msg);
                goto done;
            }
        int ref_free = !strcmp(ref, "none"); /* reward = beta * logp_model: the model's own preference */
        if (!ref_free && model_load_merged(&rm, ref, 1, &err) < 0) { fprintf(stderr, "hone eval: --ref: %s\n", err.msg); goto done; }
        if (!ref_free && rm.cfg.vocab_size != g.m.cfg.vocab_size) {
            fprintf(stderr, "hone eval: --ref %s has a vocabulary of %d, the model %d\n", ref, rm.cfg.vocab_size, g.m.cfg.vocab_size);
            goto done;
        }
        eval_progress pr = {.unit = "pairs", .per_unit = 2, .total = (ref_free ? 2L : 4L) * n, .t0 = hone_now(), .tty = isatty(2)};
        pr.last = pr.t0;
        if (score(&g.m, seqs, 2 * n, bs, lp, NULL, &pr, "model", &err) < 0 ||
            (!ref_free && score(&rm, seqs, 2 * n, bs, lp + 2 * n, NULL, &pr, "reference", &err) < 0)) {
            fprintf(stderr, "hone eval: %s\n", err.msg);
            goto done;
        }
        if (outp && !(out = fopen(outp, "w"))) { fprintf(stderr, "hone eval: %s: cannot write\n", outp); goto done; }
        double *rc_ = calloc(n, sizeof(double)), *rr_ = calloc(n, sizeof(double)), *mg = calloc(n, sizeof(double));
        int correct = 0;
        for (int i = 0; i < n && rc_ && rr_ && mg; i++) {
            double lc = lp[2 * i], lr = lp[2 * i + 1], rlc = lp[2 * n + 2 * i], rlr = lp[2 * n + 2 * i + 1];
            rc_[i] = beta * (lc - rlc);
            rr_[i] = beta * (lr - rlr);
            mg[i] = rc_[i] - rr_[i];
            correct += mg[i] > 0;
            if (out)
                fprintf(out, "{\"index\": %d, \"logp_chosen\": %.6f, \"logp_rejected\": %.6f, \"ref_logp_chosen\": %.6f, "
                             "\"ref_logp_rejected\": %.6f, \"reward_chosen\": %.6f, \"reward_rejected\": %.6f, \"margin\": %.6f, "
                             "\"chosen_tokens\": %d, \"rejected_tokens\": %d}\n",
                        i, lc, lr, rlc, rlr, rc_[i], rr_[i], mg[i], seqs[2 * i].n - seqs[2 * i].first,
                        seqs[2 * i + 1].n - seqs[2 * i + 1].first);
        }
        if (!rc_ || !rr_ || !mg) { fprintf(stderr, "hone eval: out of memory\n"); free(rc_); free(rr_); free(mg); goto done; }
        double acc = (double)correct / n;
        if (json)
            printf("\"pairs\": %d, \"beta\": %g, \"preference_accuracy\": %.6f, \"mean_margin\": %.6f, "
                   "\"mean_reward_chosen\": %.6f, \"mean_reward_rejected\": %.6f",
                   n, beta, acc, mean(mg, n), mean(rc_, n), mean(rr_, n));
        else
            printf("pairs:                %d (beta %g)\npreference accuracy:  %.4f\nmean margin:          %.6f\n"
                   "mean reward chosen:   %.6f\nmean reward rejected: %.6f\n",
                   n, beta, acc, mean(mg, n), mean(rc_, n), mean(rr_, n));
        free(rc_); free(rr_); free(mg);
        for (int i = 0; i < n_seqs; i++) free(seqs[i].ids);
        free(seqs); seqs = NULL; n_seqs = 0;
        free(lp); lp = NULL;
    }
    if (ppl) {
        const char *key = "text";
        if (gen_read_rows(ppl, &key, NULL, 1, &rows, &n, &err) < 0) { fprintf(stderr, "hone eval: %s\n", err.msg); goto done; }
        nkeys = 1;
        /* texts longer than the context are cut into windows of max_len tokens */
        int cap = n;
        seqs = calloc(cap, sizeof *seqs);
        if (!seqs) { fprintf(stderr, "hone eval: out of memory\n"); goto done; }
        for (int i = 0; i < n; i++) {
            int32_t *ids = NULL;
            size_t k = 0;
            if (tokenizer_encode(g.tok, rows[i], strlen(rows[i]), 1, &ids, &k, &err) < 0) { fprintf(stderr, "hone eval: %s:%d: %s\n", ppl, i + 1, err.msg); goto done; }
            for (size_t s = 0; s < k; s += max_len) {
                scored *q = seqs;
                if (n_seqs == cap && !(q = realloc(seqs, sizeof *seqs * (cap *= 2)))) { free(ids); fprintf(stderr, "hone eval: out of memory\n"); goto done; }
                seqs = q;
                int len = (int)(k - s < (size_t)max_len ? k - s : (size_t)max_len);
                if (!(seqs[n_seqs].ids = malloc(sizeof(int32_t) * len))) { free(ids); fprintf(stderr, "hone eval: out of memory\n"); goto done; }
                memcpy(seqs[n_seqs].ids, ids + s, sizeof(int32_t) * len);
                seqs[n_seqs].n = len;
                seqs[n_seqs++].first = 1;
            }
            free(ids);
        }
        lp = calloc(n_seqs ? n_seqs : 1, sizeof *lp);
        cnt = calloc(n_seqs ? n_seqs : 1, sizeof *cnt);
        if (!lp || !cnt) { fprintf(stderr, "hone eval: out of memory\n"); goto done; }
        eval_progress pr = {.unit = "sequences", .per_unit = 1, .total = n_seqs, .t0 = hone_now(), .tty = isatty(2)};
        pr.last = pr.t0;
        if (score(&g.m, seqs, n_seqs, bs, lp, cnt, &pr, "perplexity", &err) < 0) { fprintf(stderr, "hone eval: %s\n", err.msg); goto done; }
        double nll = 0;
        long tokens = 0;
        for (int i = 0; i < n_seqs; i++) { nll -= lp[i]; tokens += cnt[i]; }
        double p = tokens ? exp(nll / tokens) : NAN;
        if (json) printf("%s\"perplexity\": %.6f, \"perplexity_tokens\": %ld, \"texts\": %d", pairs ? ", " : "", p, tokens, n);
        else printf("perplexity:           %.4f over %ld tokens of %d texts\n", p, tokens, n);
    }
    if (json) printf("}\n");
    rc = 0;
done:
    if (out && fclose(out)) { fprintf(stderr, "hone eval: %s: write failed\n", outp); rc = 1; }
    for (int i = 0; seqs && i < n_seqs; i++) free(seqs[i].ids);
    free(seqs);
    free(lp);
    free(cnt);
    gen_rows_free(rows, n, nkeys);
    model_free(&rm);
    free(ex);
    dataset_free(&ds);
    chat_template_free(&tpl);
    gen_model_free(&g);
    return rc;
}
