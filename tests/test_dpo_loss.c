/* test_dpo_loss.c — src/train/dpo_loss.c against TRL 1.16's own loss code (tests/fixtures/dpo_loss.json,
 * written by tests/reference/dpo_loss_ref.py: loss, per-token gradients by torch autograd and
 * metrics, float64, for every loss type and option), plus central finite differences of the
 * gradients in double, permutation invariance, and the error cases.
 * Tolerance against TRL: |got - want| <= 1e-5 * |want| + 1e-12 (loss, metrics, every token grad). */
#include <jansson.h>

#include "train/dpo_loss.h"
#include "test.h"

#define RTOL 1e-5
#define ATOL 1e-12

static double num(json_t *j) { return json_number_value(j); }

/* fills opts from the fixture's "opts" object (TRL's DPOConfig names) */
static int opts_from_json(json_t *jo, dpo_loss_opts *o, hone_error *err) {
    dpo_loss_opts_default(o);
    o->beta = num(json_object_get(jo, "beta"));
    json_t *types = json_object_get(jo, "loss_type"), *weights = json_object_get(jo, "loss_weights");
    const char *names[DPO_LOSS_MAX_TYPES];
    double w[DPO_LOSS_MAX_TYPES];
    int n = (int)json_array_size(types);
    if (n > DPO_LOSS_MAX_TYPES) return hone_fail(err, "too many loss types");
    for (int i = 0; i < n; i++) {
        names[i] = json_string_value(json_array_get(types, i));
        if (json_is_array(weights)) w[i] = num(json_array_get(weights, i));
    }
    if (dpo_loss_opts_set_loss_types(o, names, n, json_is_array(weights) ? w : NULL, err)) return -1;
    o->label_smoothing = num(json_object_get(jo, "label_smoothing"));
    if (dpo_f_divergence_from_name(json_string_value(json_object_get(jo, "f_divergence_type")),
                                   &o->f_divergence_type, err))
        return -1;
    o->f_alpha_divergence_coef = num(json_object_get(jo, "f_alpha_divergence_coef"));
    o->discopop_tau = num(json_object_get(jo, "discopop_tau"));
    o->use_weighting = json_is_true(json_object_get(jo, "use_weighting"));
    json_t *ld = json_object_get(jo, "ld_alpha"), *rpo = json_object_get(jo, "rpo_alpha");
    o->ld_alpha_set = json_is_number(ld);
    o->ld_alpha = o->ld_alpha_set ? num(ld) : 0.0;
    o->rpo_alpha_set = json_is_number(rpo);
    o->rpo_alpha = o->rpo_alpha_set ? num(rpo) : 0.0;
    o->reference_free = json_is_true(json_object_get(jo, "reference_free"));
    o->bco_pair_running_mean = json_is_true(json_object_get(jo, "bco_pair_running_mean"));
    return 0;
}

/* reads a JSON array of numbers into floats; returns its length */
static int floats(json_t *a, float *out, int cap) {
    int n = (int)json_array_size(a);
    for (int i = 0; i < n && i < cap; i++) out[i] = (float)num(json_array_get(a, i));
    return n;
}

/* fills the batch input from one fixture input set, through the per-token helper */
static int input_from_set(json_t *set, dpo_loss_input *in, hone_error *err) {
    int P = (int)json_integer_value(json_object_get(set, "P"));
    if (dpo_loss_input_init(in, P, err)) return -1;
    for (int p = 0; p < P; p++) {
        float lc[64], lr[64], sc[64], sr[64];
        int nc = floats(json_array_get(json_object_get(set, "chosen_logp"), p), lc, 64);
        int nr = floats(json_array_get(json_object_get(set, "rejected_logp"), p), lr, 64);
        floats(json_array_get(json_object_get(set, "chosen_lssp"), p), sc, 64);
        floats(json_array_get(json_object_get(set, "rejected_lssp"), p), sr, 64);
        if (nc > 64 || nr > 64) return hone_fail(err, "fixture sequence too long");
        if (dpo_loss_input_set_pair(in, p, lc, nc, lr, nr, sc, sr, err)) return -1;
        in->ref_chosen[p] = num(json_array_get(json_object_get(set, "ref_chosen"), p));
        in->ref_rejected[p] = num(json_array_get(json_object_get(set, "ref_rejected"), p));
    }
    return 0;
}

/* largest relative error (|want| > 1e-9) over the alpha-divergence cases [1], where TRL rounds the
 * exponent through float32 even in a float64 run, and over all others [0] */
static double max_rel_err[2];
static char max_rel_where[2][256];

static void cmp(double got, double want, const char *case_name, const char *what) {
    double err = fabs(got - want);
    CHECK(err <= ATOL + RTOL * fabs(want), "%s: %s: got %.12g want %.12g (rtol %g atol %g)", case_name, what, got,
          want, RTOL, ATOL);
    int k = strstr(case_name, "alpha_divergence") != NULL;
    if (fabs(want) > 1e-9 && err / fabs(want) > max_rel_err[k]) {
        max_rel_err[k] = err / fabs(want);
        snprintf(max_rel_where[k], sizeof max_rel_where[k], "%s %s", case_name, what);
    }
}

static void test_trl_fixture(void) {
    json_error_t jerr;
    const char *path = test_src("tests/fixtures/dpo_loss.json");
    json_t *doc = json_load_file(path, 0, &jerr);
    CHECK(doc != NULL, "%s:%d: %s", path, jerr.line, jerr.text);
    if (!doc) return;
    json_t *sets = json_object_get(doc, "sets"), *cases = json_object_get(doc, "cases");
    static const char *metric_names[] = {"rewards/chosen", "rewards/rejected", "rewards/accuracies",
                                         "rewards/margins", "logps/chosen", "logps/rejected"};
    int n_cases = 0, n_steps = 0, n_values = 0;
    size_t ci;
    json_t *c;
    json_array_foreach(cases, ci, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        hone_error err = {{0}};
        dpo_loss_opts o;
        int rc = opts_from_json(json_object_get(c, "opts"), &o, &err);
        CHECK(rc == 0, "%s: options: %s", name, err.msg);
        if (rc) continue;
        dpo_loss_state st;
        dpo_loss_state_init(&st);
        size_t si;
        json_t *step;
        json_array_foreach(json_object_get(c, "steps"), si, step) {
            json_t *set = json_array_get(sets, (size_t)json_integer_value(json_object_get(step, "set")));
            dpo_loss_input in;
            dpo_loss_output out;
            rc = input_from_set(set, &in, &err);
            CHECK(rc == 0, "%s: %s", name, err.msg);
            if (rc) continue;
            dpo_loss_output_init(&out, in.n_pairs, &err);
            rc = dpo_loss_compute(&o, &st, &in, &out, &err);
            CHECK(rc == 0, "%s: compute failed: %s", name, err.msg);
            if (rc == 0) {
                char what[96];
                cmp(out.loss, num(json_object_get(step, "loss")), name, "loss");
                const char *mn[9];
                double mv[9];
                int nm = dpo_loss_metrics_list(&out.metrics, mn, mv);
                json_t *jm = json_object_get(step, "metrics");
                for (int k = 0; k < 6; k++) {
                    CHECK(nm >= 6 && strcmp(mn[k], metric_names[k]) == 0, "%s: metric %d name", name, k);
                    cmp(mv[k], num(json_object_get(jm, metric_names[k])), name, metric_names[k]);
                }
                for (int p = 0; p < in.n_pairs; p++) {
                    int nc = in.chosen_len[p], nr = in.rejected_len[p], k = nc < nr ? nc : nr;
                    float gc[64], gr[64];
                    dpo_loss_pair_token_grads(&out, p, nc, nr, gc, gr);
                    json_t *jc = json_array_get(json_object_get(step, "grad_chosen"), p);
                    json_t *jr = json_array_get(json_object_get(step, "grad_rejected"), p);
                    CHECK((int)json_array_size(jc) == nc && (int)json_array_size(jr) == nr, "%s: grad sizes", name);
                    for (int t = 0; t < nc; t++) {
                        double g = t < k ? out.d_chosen_shared[p] : out.d_chosen_tail[p];
                        snprintf(what, sizeof what, "step %zu d logp chosen[%d][%d]", si, p, t);
                        cmp(g, num(json_array_get(jc, t)), name, what);
                        CHECK(gc[t] == (float)g, "%s: token grad helper", name);
                    }
                    for (int t = 0; t < nr; t++) {
                        double g = t < k ? out.d_rejected_shared[p] : out.d_rejected_tail[p];
                        snprintf(what, sizeof what, "step %zu d logp rejected[%d][%d]", si, p, t);
                        cmp(g, num(json_array_get(jr, t)), name, what);
                        CHECK(gr[t] == (float)g, "%s: token grad helper", name);
                    }
                    n_values += nc + nr;
                }
                n_values += 7;
            }
            dpo_loss_output_free(&out);
            dpo_loss_input_free(&in);
            n_steps++;
        }
        n_cases++;
    }
    printf("    TRL %s fixture: %d cases, %d steps, %d values; max rel err %.3g (%s), alpha-divergence "
           "cases %.3g (%s)\n",
           json_string_value(json_object_get(doc, "trl_version")), n_cases, n_steps, n_values, max_rel_err[0],
           max_rel_where[0], max_rel_err[1], max_rel_where[1]);
    CHECK(n_cases > 150, "only %d cases", n_cases);
    json_decref(doc);
}

/* ---- finite differences in double ----------------------------------------------------------- */

static void random_input(dpo_loss_input *in, unsigned *seed) {
    for (int p = 0; p < in->n_pairs; p++) {
#define RND() ((*seed = *seed * 1103515245u + 12345u), ((*seed >> 8) & 0xffff) / 65536.0)
        in->chosen_len[p] = 1 + (int)(RND() * 6);
        in->rejected_len[p] = 1 + (int)(RND() * 6);
        in->chosen_shared[p] = -3.0 * RND() - 0.1;
        in->chosen_tail[p] = in->chosen_len[p] > in->rejected_len[p] ? -2.0 * RND() : 0.0;
        in->rejected_shared[p] = -3.0 * RND() - 0.1;
        in->rejected_tail[p] = in->rejected_len[p] > in->chosen_len[p] ? -2.0 * RND() : 0.0;
        in->ref_chosen[p] = in->chosen_shared[p] + in->chosen_tail[p] + 2.0 * (RND() - 0.5);
        in->ref_rejected[p] = in->rejected_shared[p] + in->rejected_tail[p] + 2.0 * (RND() - 0.5);
        in->chosen_wpo[p] = -in->chosen_len[p] * RND();
        in->rejected_wpo[p] = -in->rejected_len[p] * RND();
#undef RND
    }
}

static double loss_at(const dpo_loss_opts *o, const dpo_loss_input *in, dpo_loss_output *scratch) {
    hone_error err;
    if (dpo_loss_compute(o, NULL, in, scratch, &err)) return NAN;
    return scratch->loss;
}

static void fd_check(const dpo_loss_opts *o, const char *what, unsigned seed) {
    enum { P = 5 };
    dpo_loss_input in;
    dpo_loss_output out, tmp;
    hone_error err;
    dpo_loss_input_init(&in, P, &err);
    dpo_loss_output_init(&out, P, &err);
    dpo_loss_output_init(&tmp, P, &err);
    random_input(&in, &seed);
    int rc = dpo_loss_compute(o, NULL, &in, &out, &err);
    CHECK(rc == 0, "%s: %s", what, err.msg);
    double *fields[4] = {in.chosen_shared, in.chosen_tail, in.rejected_shared, in.rejected_tail};
    double *grads[4] = {out.d_chosen_shared, out.d_chosen_tail, out.d_rejected_shared, out.d_rejected_tail};
    static const char *fname[4] = {"chosen_shared", "chosen_tail", "rejected_shared", "rejected_tail"};
    const double h = 1e-6;
    for (int f = 0; f < 4 && rc == 0; f++)
        for (int p = 0; p < P; p++) {
            double x = fields[f][p];
            fields[f][p] = x + h;
            double lp = loss_at(o, &in, &tmp);
            fields[f][p] = x - h;
            double lm = loss_at(o, &in, &tmp);
            fields[f][p] = x;
            double fd = (lp - lm) / (2 * h);
            CHECK(fabs(fd - grads[f][p]) <= 1e-6 + 1e-5 * fabs(fd), "%s: d%s[%d]: analytic %.10g, FD %.10g", what,
                  fname[f], p, grads[f][p], fd);
        }
    dpo_loss_output_free(&tmp);
    dpo_loss_output_free(&out);
    dpo_loss_input_free(&in);
}

static void test_finite_differences(void) {
    int n = 0;
    for (int t = 0; t < DPO_LOSS_N_TYPES; t++) {
        dpo_loss_opts o;
        dpo_loss_opts_default(&o);
        o.loss_type[0] = (dpo_loss_type)t;
        o.beta = 0.3;
        o.label_smoothing = t == DPO_LOSS_EXO_PAIR ? 0.01 : 0.1;
        char what[128];
        for (int variant = 0; variant < 5; variant++) {
            o.ld_alpha_set = variant >= 1;
            o.ld_alpha = 0.4;
            o.use_weighting = variant >= 2 && t != DPO_LOSS_AOT && t != DPO_LOSS_AOT_UNPAIRED;
            o.rpo_alpha_set = variant == 3;
            o.rpo_alpha = 0.7;
            o.reference_free = variant == 4;
            snprintf(what, sizeof what, "%s variant %d", dpo_loss_type_name((dpo_loss_type)t), variant);
            fd_check(&o, what, 17u + (unsigned)(t * 7 + variant));
            n++;
        }
        o.use_weighting = 0, o.rpo_alpha_set = 0, o.reference_free = 0;
        for (int f = 1; f < DPO_FDIV_N_TYPES; f++) {
            o.f_divergence_type = (dpo_f_divergence)f;
            o.f_alpha_divergence_coef = 0.6;
            if (dpo_loss_opts_validate(&o, NULL)) continue;
            snprintf(what, sizeof what, "%s %s", dpo_loss_type_name((dpo_loss_type)t), dpo_f_divergence_name(o.f_divergence_type));
            fd_check(&o, what, 99u + (unsigned)t);
            n++;
        }
    }
    dpo_loss_opts o;
    const char *mix[] = {"sigmoid", "bco_pair", "sft", "ipo", "aot", "discopop"};
    double w[] = {0.8, 0.2, 1.0, 0.05, 0.3, 0.5};
    dpo_loss_opts_default(&o);
    dpo_loss_opts_set_loss_types(&o, mix, 6, w, NULL);
    fd_check(&o, "mixed list", 5u);
    printf("    %d option sets, 20 partial derivatives each\n", n + 1);
}

/* the loss is a mean over pairs: permuting the pairs permutes the gradients (aot sorts, so holds too) */
static void test_permutation(void) {
    enum { P = 4 };
    for (int t = 0; t < DPO_LOSS_N_TYPES; t++) {
        dpo_loss_opts o;
        dpo_loss_opts_default(&o);
        o.loss_type[0] = (dpo_loss_type)t;
        o.label_smoothing = 0.05;
        o.ld_alpha_set = 1, o.ld_alpha = 0.5;
        dpo_loss_input a, b;
        dpo_loss_output oa, ob;
        hone_error err;
        unsigned seed = 3u + (unsigned)t;
        dpo_loss_input_init(&a, P, &err);
        dpo_loss_input_init(&b, P, &err);
        dpo_loss_output_init(&oa, P, &err);
        dpo_loss_output_init(&ob, P, &err);
        random_input(&a, &seed);
        static const int perm[P] = {2, 0, 3, 1};
        for (int p = 0; p < P; p++) {
            int q = perm[p];
            b.chosen_shared[p] = a.chosen_shared[q], b.chosen_tail[p] = a.chosen_tail[q];
            b.rejected_shared[p] = a.rejected_shared[q], b.rejected_tail[p] = a.rejected_tail[q];
            b.ref_chosen[p] = a.ref_chosen[q], b.ref_rejected[p] = a.ref_rejected[q];
            b.chosen_len[p] = a.chosen_len[q], b.rejected_len[p] = a.rejected_len[q];
            b.chosen_wpo[p] = a.chosen_wpo[q], b.rejected_wpo[p] = a.rejected_wpo[q];
        }
        CHECK(dpo_loss_compute(&o, NULL, &a, &oa, &err) == 0, "%s", err.msg);
        CHECK(dpo_loss_compute(&o, NULL, &b, &ob, &err) == 0, "%s", err.msg);
        CHECK_CLOSE(ob.loss, oa.loss, 1e-13, 1e-15, dpo_loss_type_name((dpo_loss_type)t));
        for (int p = 0; p < P; p++) {
            CHECK_CLOSE(ob.d_chosen_shared[p], oa.d_chosen_shared[perm[p]], 1e-12, 1e-15, "perm d_chosen_shared");
            CHECK_CLOSE(ob.d_rejected_tail[p], oa.d_rejected_tail[perm[p]], 1e-12, 1e-15, "perm d_rejected_tail");
        }
        dpo_loss_output_free(&oa);
        dpo_loss_output_free(&ob);
        dpo_loss_input_free(&a);
        dpo_loss_input_free(&b);
    }
}

/* the per-token helpers: shared/tail split at min(n_c, n_r), ref combined with ld_alpha */
static void test_token_helpers(void) {
    dpo_loss_input in;
    hone_error err;
    dpo_loss_opts o;
    dpo_loss_opts_default(&o);
    dpo_loss_input_init(&in, 2, &err);
    const float c[4] = {-1, -2, -3, -4}, r[2] = {-0.5f, -0.25f}, lc[4] = {-1, -1, -1, -1}, lr[2] = {-2, -2};
    CHECK(dpo_loss_input_set_pair(&in, 1, c, 4, r, 2, lc, lr, &err) == 0, "%s", err.msg);
    CHECK(in.chosen_shared[1] == -3 && in.chosen_tail[1] == -7, "chosen split %g %g", in.chosen_shared[1],
          in.chosen_tail[1]);
    CHECK(in.rejected_shared[1] == -0.75 && in.rejected_tail[1] == 0, "rejected split");
    CHECK(in.chosen_wpo[1] == -6 && in.rejected_wpo[1] == 3.25, "wpo sums %g %g", in.chosen_wpo[1], in.rejected_wpo[1]);
    CHECK(in.chosen_len[1] == 4 && in.rejected_len[1] == 2, "lengths");
    o.ld_alpha_set = 1, o.ld_alpha = 0.5;
    CHECK(dpo_loss_input_set_ref_pair(&in, &o, 1, c, 4, r, 2, &err) == 0, "%s", err.msg);
    CHECK(in.ref_chosen[1] == -3 - 3.5 && in.ref_rejected[1] == -0.75, "ref combine %g", in.ref_chosen[1]);
    CHECK(dpo_loss_input_set_pair(&in, 2, c, 4, r, 2, NULL, NULL, &err) == -1 && strstr(err.msg, "pair 2"),
          "out of range pair: %s", err.msg);
    dpo_loss_input_free(&in);
}

static void expect_fail(const dpo_loss_opts *o, const char *needle, const char *what) {
    hone_error err = {{0}};
    CHECK(dpo_loss_opts_validate(o, &err) == -1, "%s: accepted", what);
    CHECK(strstr(err.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, needle);
}

static void test_errors(void) {
    hone_error err = {{0}};
    dpo_loss_type t;
    CHECK(dpo_loss_type_from_name("sigmiod", &t, &err) == -1, "unknown name accepted");
    CHECK(strstr(err.msg, "'sigmiod'") && strstr(err.msg, "'sigmoid_norm'") && strstr(err.msg, "'apo_down'") &&
              strstr(err.msg, "loss_type"),
          "message should name the bad name and the valid ones: %s", err.msg);
    CHECK(dpo_loss_type_from_name("aot_pair", &t, &err) == -1 && strstr(err.msg, "aot_unpaired"), "%s", err.msg);
    for (int i = 0; i < DPO_LOSS_N_TYPES; i++)
        CHECK(dpo_loss_type_from_name(dpo_loss_type_name((dpo_loss_type)i), &t, NULL) == 0 && (int)t == i,
              "round trip %d", i);
    dpo_f_divergence f;
    CHECK(dpo_f_divergence_from_name("kl", &f, &err) == -1 && strstr(err.msg, "js_divergence"), "%s", err.msg);
    CHECK(dpo_f_divergence_from_name("alpha_divergence", &f, &err) == 0 && f == DPO_FDIV_ALPHA_DIVERGENCE, "fdiv");

    dpo_loss_opts o;
    const char *bad[] = {"sigmoid", "nope"};
    dpo_loss_opts_default(&o);
    CHECK(dpo_loss_opts_set_loss_types(&o, bad, 2, NULL, &err) == -1 && strstr(err.msg, "'nope'"), "%s", err.msg);
    CHECK(dpo_loss_opts_set_loss_types(&o, bad, 0, NULL, &err) == -1, "empty list accepted");

    dpo_loss_opts_default(&o);
    o.loss_type[0] = DPO_LOSS_NCA_PAIR;
    o.f_divergence_type = DPO_FDIV_JS_DIVERGENCE;
    expect_fail(&o, "nca_pair", "f-divergence with nca_pair");
    dpo_loss_opts_default(&o);
    o.loss_type[0] = DPO_LOSS_AOT;
    o.use_weighting = 1;
    expect_fail(&o, "use_weighting", "WPO with aot");
    dpo_loss_opts_default(&o);
    o.loss_type[0] = DPO_LOSS_EXO_PAIR;
    expect_fail(&o, "label_smoothing", "exo_pair without label smoothing");
    dpo_loss_opts_default(&o);
    o.ld_alpha_set = 1, o.ld_alpha = 1.5;
    expect_fail(&o, "ld_alpha", "ld_alpha out of range");
    dpo_loss_opts_default(&o);
    o.loss_type[0] = DPO_LOSS_DISCOPOP;
    o.discopop_tau = 0;
    expect_fail(&o, "discopop_tau", "discopop_tau 0");

    /* compute-time errors */
    dpo_loss_input in;
    dpo_loss_output out, out3;
    dpo_loss_input_init(&in, 2, &err);
    dpo_loss_output_init(&out, 2, &err);
    dpo_loss_output_init(&out3, 3, &err);
    dpo_loss_opts_default(&o);
    CHECK(dpo_loss_compute(&o, NULL, &in, &out3, &err) == -1 && strstr(err.msg, "pairs"), "size mismatch: %s",
          err.msg);
    o.loss_type[0] = DPO_LOSS_SFT; /* no chosen tokens at all */
    CHECK(dpo_loss_compute(&o, NULL, &in, &out, &err) == -1 && strstr(err.msg, "sft"), "sft empty: %s", err.msg);
    o.loss_type[0] = DPO_LOSS_BCO_PAIR;
    o.bco_pair_running_mean = 1;
    CHECK(dpo_loss_compute(&o, NULL, &in, &out, &err) == -1 && strstr(err.msg, "state"), "no state: %s", err.msg);
    dpo_loss_input zero;
    CHECK(dpo_loss_input_init(&zero, 0, &err) == -1, "zero pairs accepted");
    dpo_loss_output_free(&out);
    dpo_loss_output_free(&out3);
    dpo_loss_input_free(&in);
}

int main(void) {
    TEST_RUN(test_trl_fixture);
    TEST_RUN(test_finite_differences);
    TEST_RUN(test_permutation);
    TEST_RUN(test_token_helpers);
    TEST_RUN(test_errors);
    return test_finish();
}
