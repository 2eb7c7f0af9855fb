/* train/dpo_loss.c — TRL 1.16 DPOTrainer._compute_loss, from per-sequence log-prob sums to the batch
 * loss, its exact autograd gradient and TRL's metrics (see dpo_loss.h for the inputs, docs/dpo.md
 * for the formulas). Everything is double; one pass over the pairs per loss type.
 *
 * Gradient bookkeeping: every loss term is differentiated with respect to the two sequence
 * log-probs of a pair (g_lc, g_lr: logps = shared + a*tail, through the f-divergence score where
 * the loss uses it) and, for the "sft" term, the plain sum of the chosen token log-probs (g_raw).
 * The four per-sequence gradients follow from the chain rule at the end. WPO weights are detached
 * in TRL (computed under no_grad), so they scale the gradient but get none. */
#include "train/dpo_loss.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const loss_type_names[DPO_LOSS_N_TYPES] = {
    "sigmoid",  "hinge",        "ipo",      "exo_pair", "nca_pair", "robust",   "bco_pair",    "sppo_hard",
    "aot",      "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft",      "sigmoid_norm",
};

static const char *const fdiv_names[DPO_FDIV_N_TYPES] = {
    "reverse_kl", "forward_kl", "js_divergence", "alpha_divergence",
};

void dpo_loss_opts_default(dpo_loss_opts *o) {
    memset(o, 0, sizeof *o);
    o->beta = 0.1;
    o->n_loss_types = 1;
    o->loss_type[0] = DPO_LOSS_SIGMOID;
    for (int i = 0; i < DPO_LOSS_MAX_TYPES; i++) o->loss_weights[i] = 1.0;
    o->label_smoothing = 0.0;
    o->f_divergence_type = DPO_FDIV_REVERSE_KL;
    o->f_alpha_divergence_coef = 0.5;
    o->discopop_tau = 0.05;
}

const char *dpo_loss_type_name(dpo_loss_type t) {
    return (unsigned)t < DPO_LOSS_N_TYPES ? loss_type_names[t] : "?";
}

const char *dpo_f_divergence_name(dpo_f_divergence f) {
    return (unsigned)f < DPO_FDIV_N_TYPES ? fdiv_names[f] : "?";
}

/* "'a', 'b', ..." into buf, for error messages. */
static void list_names(char *buf, size_t cap, const char *const *names, int n) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < n && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s'%s'", i ? ", " : "", names[i]);
}

int dpo_loss_type_from_name(const char *name, dpo_loss_type *out, hone_error *err) {
    for (int i = 0; i < DPO_LOSS_N_TYPES; i++)
        if (name && strcmp(name, loss_type_names[i]) == 0) {
            *out = (dpo_loss_type)i;
            return 0;
        }
    char valid[512];
    list_names(valid, sizeof valid, loss_type_names, DPO_LOSS_N_TYPES);
    const char *hint = name && strcmp(name, "aot_pair") == 0 ? " (TRL before 1.0 called 'aot_unpaired' 'aot_pair')" : "";
    return hone_fail(err, "loss_type: unknown loss type '%s'%s; valid: %s", name ? name : "(null)", hint, valid);
}

int dpo_f_divergence_from_name(const char *name, dpo_f_divergence *out, hone_error *err) {
    for (int i = 0; i < DPO_FDIV_N_TYPES; i++)
        if (name && strcmp(name, fdiv_names[i]) == 0) {
            *out = (dpo_f_divergence)i;
            return 0;
        }
    char valid[256];
    list_names(valid, sizeof valid, fdiv_names, DPO_FDIV_N_TYPES);
    return hone_fail(err, "f_divergence_type: unknown f-divergence '%s'; valid: %s", name ? name : "(null)", valid);
}

int dpo_loss_opts_set_loss_types(dpo_loss_opts *o, const char *const *names, int n, const double *weights,
                                 hone_error *err) {
    if (n < 1 || n > DPO_LOSS_MAX_TYPES)
        return hone_fail(err, "loss_type: %d loss types given, need 1 to %d", n, DPO_LOSS_MAX_TYPES);
    for (int i = 0; i < n; i++) {
        if (dpo_loss_type_from_name(names[i], &o->loss_type[i], err)) return -1;
        o->loss_weights[i] = weights ? weights[i] : 1.0;
    }
    o->n_loss_types = n;
    return 0;
}

static int has_type(const dpo_loss_opts *o, dpo_loss_type t) {
    for (int i = 0; i < o->n_loss_types; i++)
        if (o->loss_type[i] == t) return 1;
    return 0;
}

int dpo_loss_opts_validate(const dpo_loss_opts *o, hone_error *err) {
    if (o->n_loss_types < 1 || o->n_loss_types > DPO_LOSS_MAX_TYPES)
        return hone_fail(err, "loss_type: %d loss types, need 1 to %d", o->n_loss_types, DPO_LOSS_MAX_TYPES);
    for (int i = 0; i < o->n_loss_types; i++) {
        if ((unsigned)o->loss_type[i] >= DPO_LOSS_N_TYPES)
            return hone_fail(err, "loss_type[%d]: invalid loss type %d", i, (int)o->loss_type[i]);
        if (!isfinite(o->loss_weights[i]))
            return hone_fail(err, "loss_weights[%d]: not a finite number", i);
    }
    if ((unsigned)o->f_divergence_type >= DPO_FDIV_N_TYPES)
        return hone_fail(err, "f_divergence_type: invalid value %d", (int)o->f_divergence_type);
    if (!isfinite(o->beta)) return hone_fail(err, "beta: not a finite number");
    /* TRL: the f-DPO reparameterisation only cancels log Z(x) in the chosen-rejected difference */
    if (o->f_divergence_type != DPO_FDIV_REVERSE_KL) {
        static const dpo_loss_type ok[] = {DPO_LOSS_SIGMOID, DPO_LOSS_SIGMOID_NORM, DPO_LOSS_HINGE,  DPO_LOSS_IPO,
                                           DPO_LOSS_EXO_PAIR, DPO_LOSS_ROBUST,      DPO_LOSS_DISCOPOP, DPO_LOSS_SFT};
        for (int i = 0; i < o->n_loss_types; i++) {
            int found = 0;
            for (size_t j = 0; j < sizeof ok / sizeof ok[0]; j++) found |= o->loss_type[i] == ok[j];
            if (!found)
                return hone_fail(err,
                                 "f_divergence_type: '%s' is only supported for the loss types 'discopop', "
                                 "'exo_pair', 'hinge', 'ipo', 'robust', 'sft', 'sigmoid', 'sigmoid_norm'; "
                                 "loss_type includes '%s' (use 'reverse_kl' with it)",
                                 fdiv_names[o->f_divergence_type], loss_type_names[o->loss_type[i]]);
        }
    }
    if (o->use_weighting && (has_type(o, DPO_LOSS_AOT) || has_type(o, DPO_LOSS_AOT_UNPAIRED)))
        return hone_fail(err, "use_weighting: WPO weighting is not implemented for 'aot' or 'aot_unpaired' "
                              "(they sort samples, which would misalign per-pair weights)");
    if (has_type(o, DPO_LOSS_EXO_PAIR) && o->label_smoothing == 0.0)
        return hone_fail(err, "label_smoothing: must be greater than 0.0 with the 'exo_pair' loss "
                              "(the EXO paper recommends 1e-3)");
    if (has_type(o, DPO_LOSS_EXO_PAIR) && !(o->label_smoothing > 0.0 && o->label_smoothing < 1.0))
        return hone_fail(err, "label_smoothing: %g is outside (0, 1), which 'exo_pair' needs", o->label_smoothing);
    if (o->ld_alpha_set && !(o->ld_alpha >= 0.0 && o->ld_alpha <= 1.0))
        return hone_fail(err, "ld_alpha: %g is outside [0.0, 1.0]", o->ld_alpha);
    if (has_type(o, DPO_LOSS_DISCOPOP) && !(o->discopop_tau != 0.0 && isfinite(o->discopop_tau)))
        return hone_fail(err, "discopop_tau: must be a nonzero finite number");
    if (o->rpo_alpha_set && !isfinite(o->rpo_alpha)) return hone_fail(err, "rpo_alpha: not a finite number");
    return 0;
}

/* ---- inputs / outputs ---------------------------------------------------------------------- */

int dpo_loss_input_init(dpo_loss_input *in, int n_pairs, hone_error *err) {
    memset(in, 0, sizeof *in);
    if (n_pairs < 1) return hone_fail(err, "dpo loss: batch of %d pairs, need at least 1", n_pairs);
    size_t P = (size_t)n_pairs;
    double *d = calloc(8 * P, sizeof *d);
    int *l = calloc(2 * P, sizeof *l);
    if (!d || !l) {
        free(d);
        free(l);
        return hone_fail(err, "dpo loss: out of memory for %d pairs", n_pairs);
    }
    in->n_pairs = n_pairs;
    in->chosen_shared = d;
    in->chosen_tail = d + P;
    in->rejected_shared = d + 2 * P;
    in->rejected_tail = d + 3 * P;
    in->ref_chosen = d + 4 * P;
    in->ref_rejected = d + 5 * P;
    in->chosen_wpo = d + 6 * P;
    in->rejected_wpo = d + 7 * P;
    in->chosen_len = l;
    in->rejected_len = l + P;
    return 0;
}

void dpo_loss_input_free(dpo_loss_input *in) {
    if (!in) return;
    free(in->chosen_shared);
    free(in->chosen_len);
    memset(in, 0, sizeof *in);
}

static double sum_f(const float *x, int lo, int hi) {
    double s = 0.0;
    for (int t = lo; t < hi; t++) s += x[t];
    return s;
}

static int check_pair(const dpo_loss_input *in, int p, int n_c, int n_r, hone_error *err) {
    if (p < 0 || p >= in->n_pairs) return hone_fail(err, "dpo loss: pair %d outside the batch of %d", p, in->n_pairs);
    if (n_c < 0 || n_r < 0) return hone_fail(err, "dpo loss: pair %d: negative completion length", p);
    return 0;
}

int dpo_loss_input_set_pair(dpo_loss_input *in, int p, const float *logp_c, int n_c, const float *logp_r,
                            int n_r, const float *lssp_c, const float *lssp_r, hone_error *err) {
    if (check_pair(in, p, n_c, n_r, err)) return -1;
    int k = n_c < n_r ? n_c : n_r; /* LD-DPO's public length */
    in->chosen_shared[p] = sum_f(logp_c, 0, k);
    in->chosen_tail[p] = sum_f(logp_c, k, n_c);
    in->rejected_shared[p] = sum_f(logp_r, 0, k);
    in->rejected_tail[p] = sum_f(logp_r, k, n_r);
    in->chosen_len[p] = n_c;
    in->rejected_len[p] = n_r;
    in->chosen_wpo[p] = 0.0;
    in->rejected_wpo[p] = 0.0;
    if (lssp_c && lssp_r) {
        for (int t = 0; t < n_c; t++) in->chosen_wpo[p] += (double)logp_c[t] - lssp_c[t];
        for (int t = 0; t < n_r; t++) in->rejected_wpo[p] += (double)logp_r[t] - lssp_r[t];
    }
    return 0;
}

double dpo_loss_seq_logps(const dpo_loss_opts *o, double shared, double tail) {
    return shared + (o->ld_alpha_set ? o->ld_alpha : 1.0) * tail;
}

int dpo_loss_input_set_ref_pair(dpo_loss_input *in, const dpo_loss_opts *o, int p, const float *ref_c, int n_c,
                                const float *ref_r, int n_r, hone_error *err) {
    if (check_pair(in, p, n_c, n_r, err)) return -1;
    int k = n_c < n_r ? n_c : n_r;
    in->ref_chosen[p] = dpo_loss_seq_logps(o, sum_f(ref_c, 0, k), sum_f(ref_c, k, n_c));
    in->ref_rejected[p] = dpo_loss_seq_logps(o, sum_f(ref_r, 0, k), sum_f(ref_r, k, n_r));
    return 0;
}

int dpo_loss_output_init(dpo_loss_output *out, int n_pairs, hone_error *err) {
    memset(out, 0, sizeof *out);
    if (n_pairs < 1) return hone_fail(err, "dpo loss: batch of %d pairs, need at least 1", n_pairs);
    size_t P = (size_t)n_pairs;
    double *d = calloc(6 * P, sizeof *d);
    int *s = calloc(2 * P, sizeof *s);
    if (!d || !s) {
        free(d);
        free(s);
        return hone_fail(err, "dpo loss: out of memory for %d pairs", n_pairs);
    }
    out->n_pairs = n_pairs;
    out->d_chosen_shared = d;
    out->d_chosen_tail = d + P;
    out->d_rejected_shared = d + 2 * P;
    out->d_rejected_tail = d + 3 * P;
    out->sort_key = d + 4 * P;
    out->sort_idx = s;
    return 0;
}

void dpo_loss_output_free(dpo_loss_output *out) {
    if (!out) return;
    free(out->d_chosen_shared);
    free(out->sort_idx);
    memset(out, 0, sizeof *out);
}

void dpo_loss_state_init(dpo_loss_state *s) {
    s->mean = 0.0;
    s->var = 1.0;
    s->count = 1e-24;
}

void dpo_loss_pair_token_grads(const dpo_loss_output *out, int p, int n_c, int n_r, float *g_c, float *g_r) {
    int k = n_c < n_r ? n_c : n_r;
    for (int t = 0; t < n_c; t++) g_c[t] = (float)(t < k ? out->d_chosen_shared[p] : out->d_chosen_tail[p]);
    for (int t = 0; t < n_r; t++) g_r[t] = (float)(t < k ? out->d_rejected_shared[p] : out->d_rejected_tail[p]);
}

int dpo_loss_metrics_list(const dpo_loss_metrics *m, const char **names, double *values) {
    int n = 0;
#define PUT(name, v) (names[n] = (name), values[n] = (v), n++)
    PUT("rewards/chosen", m->rewards_chosen);
    PUT("rewards/rejected", m->rewards_rejected);
    PUT("rewards/accuracies", m->rewards_accuracies);
    PUT("rewards/margins", m->rewards_margins);
    PUT("logps/chosen", m->logps_chosen);
    PUT("logps/rejected", m->logps_rejected);
    if (m->has_nll_loss) PUT("nll_loss", m->nll_loss);
    if (m->has_bco_running_mean) PUT("bco_running_mean", m->bco_running_mean);
#undef PUT
    return n;
}

/* ---- the loss ------------------------------------------------------------------------------- */

/* log sigmoid(x) = -softplus(-x), stable for both signs */
static double log_sigmoid(double x) { return x < 0 ? x - log1p(exp(x)) : -log1p(exp(-x)); }

static double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* f-divergence score s(r) of a log-ratio r and ds/dr (TRL: f'(t) at t = exp(r)) */
static double fdiv_score(const dpo_loss_opts *o, double r, double *ds) {
    switch (o->f_divergence_type) {
    case DPO_FDIV_FORWARD_KL: /* 1 - 1/t */
        *ds = exp(-r);
        return 1.0 - exp(-r);
    case DPO_FDIV_JS_DIVERGENCE: /* log(2t/(t+1)) */
        *ds = sigmoid(-r);
        return log(2.0) + log_sigmoid(r);
    case DPO_FDIV_ALPHA_DIVERGENCE: {
        double a = o->f_alpha_divergence_coef;
        if (fabs(a - 1.0) < 1e-6) break; /* limit log(t): reverse KL, as TRL */
        /* (t^(a-1) - 1)/(a-1); TRL clamps the exponent at 80 (float32's table), which stops the gradient */
        double t = (a - 1.0) * r;
        double e = exp(t > 80.0 ? 80.0 : t);
        *ds = t > 80.0 ? 0.0 : e;
        return (e - 1.0) / (a - 1.0);
    }
    default: break;
    }
    *ds = 1.0;
    return r;
}

/* one pair's view of the batch */
typedef struct pair_vals {
    double lc, lr;    // policy sequence logps (ld_alpha-combined)
    double rc, rr;    // log-ratios logps - ref
    double sc, sr;    // f-divergence scores of rc, rr
    double dsc, dsr;  // d score / d log-ratio
    double nc, nr;    // completion lengths clamped to >= 1 (ipo, sigmoid_norm)
    double w;         // WPO weight (detached), 1 without use_weighting
} pair_vals;

static void pair_load(const dpo_loss_opts *o, const dpo_loss_input *in, int p, pair_vals *v) {
    v->lc = dpo_loss_seq_logps(o, in->chosen_shared[p], in->chosen_tail[p]);
    v->lr = dpo_loss_seq_logps(o, in->rejected_shared[p], in->rejected_tail[p]);
    double refc = o->reference_free ? 0.0 : in->ref_chosen[p];
    double refr = o->reference_free ? 0.0 : in->ref_rejected[p];
    v->rc = v->lc - refc;
    v->rr = v->lr - refr;
    v->sc = fdiv_score(o, v->rc, &v->dsc);
    v->sr = fdiv_score(o, v->rr, &v->dsr);
    v->nc = in->chosen_len[p] > 1 ? in->chosen_len[p] : 1;
    v->nr = in->rejected_len[p] > 1 ? in->rejected_len[p] : 1;
    v->w = 1.0;
    if (o->use_weighting) /* WPO Eq. 2: exp of the mean of logp - log sum p^2, per sequence */
        v->w = exp(in->chosen_wpo[p] / v->nc) * exp(in->rejected_wpo[p] / v->nr);
}

/* Per-pair loss of a term built on delta = sc - sr or on the log-ratios. Writes the partial
 * derivatives with respect to the scores (ds*) and to the log-ratios directly (dr*). */
static double pair_loss(const dpo_loss_opts *o, dpo_loss_type t, const pair_vals *v, double bco_delta, double *dsc,
                        double *dsr, double *drc, double *drr) {
    double b = o->beta, ls = o->label_smoothing;
    double z = b * (v->sc - v->sr), dz = 0.0, L = 0.0;
    *dsc = *dsr = *drc = *drr = 0.0;
    switch (t) {
    case DPO_LOSS_SIGMOID:
        L = -log_sigmoid(z);
        dz = -sigmoid(-z);
        break;
    case DPO_LOSS_HINGE:
        L = 1.0 - z > 0.0 ? 1.0 - z : 0.0;
        dz = 1.0 - z > 0.0 ? -1.0 : 0.0; /* relu'(0) = 0 in torch */
        break;
    case DPO_LOSS_IPO:
    case DPO_LOSS_SIGMOID_NORM: {
        /* per-token averages of the scores (TRL normalises by the completion length, clamped to 1) */
        double d = v->sc / v->nc - v->sr / v->nr, dd;
        if (t == DPO_LOSS_IPO) {
            double q = d - 1.0 / (2.0 * b);
            L = q * q;
            dd = 2.0 * q;
        } else {
            L = -log_sigmoid(b * d);
            dd = -b * sigmoid(-b * d);
        }
        *dsc = dd / v->nc;
        *dsr = -dd / v->nr;
        return L;
    }
    case DPO_LOSS_EXO_PAIR: {
        /* q_w (log q_w - log(1-eps)) + q_l (log q_l - log eps), q_w = sigmoid(z) */
        double qw = sigmoid(z), ql = sigmoid(-z), lpw = log1p(-ls), lpl = log(ls);
        L = qw * (log_sigmoid(z) - lpw) + ql * (log_sigmoid(-z) - lpl);
        dz = qw * ql * (z - lpw + lpl); /* log q_w - log q_l = z */
        break;
    }
    case DPO_LOSS_ROBUST:
        L = (-(1.0 - ls) * log_sigmoid(z) + ls * log_sigmoid(-z)) / (1.0 - 2.0 * ls);
        dz = (-(1.0 - ls) * sigmoid(-z) - ls * sigmoid(z)) / (1.0 - 2.0 * ls);
        break;
    case DPO_LOSS_DISCOPOP: {
        double tau = o->discopop_tau, m = sigmoid(z / tau), dm = m * sigmoid(-z / tau) / tau, ez = exp(-z);
        double lg = -log_sigmoid(z);
        L = lg * (1.0 - m) + ez * m;
        dz = -sigmoid(-z) * (1.0 - m) - lg * dm - ez * m + ez * dm;
        break;
    }
    case DPO_LOSS_NCA_PAIR: {
        double cr = b * v->rc, rr = b * v->rr;
        L = -log_sigmoid(cr) - 0.5 * log_sigmoid(-cr) - 0.5 * log_sigmoid(-rr);
        *drc = b * (-sigmoid(-cr) + 0.5 * sigmoid(cr));
        *drr = b * 0.5 * sigmoid(rr);
        return L;
    }
    case DPO_LOSS_BCO_PAIR: {
        double cr = b * v->rc - bco_delta, rr = b * v->rr - bco_delta;
        L = -log_sigmoid(cr) - log_sigmoid(-rr);
        *drc = -b * sigmoid(-cr);
        *drr = b * sigmoid(rr);
        return L;
    }
    case DPO_LOSS_SPPO_HARD: {
        double a = v->rc - 0.5 / b, c = v->rr + 0.5 / b;
        *drc = 2.0 * a;
        *drr = 2.0 * c;
        return a * a + c * c;
    }
    case DPO_LOSS_APO_ZERO: {
        double sc = sigmoid(b * v->rc), sr = sigmoid(b * v->rr);
        *drc = -b * sc * (1.0 - sc);
        *drr = b * sr * (1.0 - sr);
        return 1.0 - sc + sr;
    }
    case DPO_LOSS_APO_DOWN: {
        double sc = sigmoid(b * v->rc), u = sigmoid(b * (v->rc - v->rr));
        double du = b * u * (1.0 - u);
        *drc = b * sc * (1.0 - sc) - du;
        *drr = du;
        return sc + 1.0 - u;
    }
    default: return 0.0; /* aot, aot_unpaired, sft: handled over the whole batch */
    }
    *dsc = b * dz;
    *dsr = -b * dz;
    return L;
}

/* -(1-ls) log sigmoid(b d) - ls log sigmoid(-b d) and its d/dd (aot, aot_unpaired) */
static double aot_term(double b, double ls, double d, double *dd) {
    double z = b * d;
    *dd = b * (-(1.0 - ls) * sigmoid(-z) + ls * sigmoid(z));
    return -(1.0 - ls) * log_sigmoid(z) - ls * log_sigmoid(-z);
}

/* idx[0..n) = 0..n-1 sorted by key ascending (stable insertion sort: ties keep index order, so the
 * result is deterministic; P is a batch size, so O(P^2) is nothing next to the model) */
static void argsort(int *idx, const double *key, int n) {
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int i = 1; i < n; i++) {
        int cur = idx[i], j = i - 1;
        for (; j >= 0 && key[idx[j]] > key[cur]; j--) idx[j + 1] = idx[j];
        idx[j + 1] = cur;
    }
}

int dpo_loss_compute(const dpo_loss_opts *o, dpo_loss_state *state, const dpo_loss_input *in,
                     dpo_loss_output *out, hone_error *err) {
    if (dpo_loss_opts_validate(o, err)) return -1;
    if (in->n_pairs != out->n_pairs || in->n_pairs < 1)
        return hone_fail(err, "dpo loss: input has %d pairs, output %d", in->n_pairs, out->n_pairs);
    const int P = in->n_pairs;
    const double b = o->beta, a = o->ld_alpha_set ? o->ld_alpha : 1.0;
    double *g_lc = out->d_chosen_shared, *g_lr = out->d_rejected_shared; /* reused, see the end */
    double *g_raw = out->d_chosen_tail;
    dpo_loss_metrics *m = &out->metrics;
    memset(m, 0, sizeof *m);
    for (int p = 0; p < P; p++) g_lc[p] = g_lr[p] = g_raw[p] = 0.0;

    /* metrics (no gradient) and the batch statistics some terms need */
    double mean_w = 0.0, raw_sum = 0.0, n_tok = 0.0, rew_sum = 0.0;
    for (int p = 0; p < P; p++) {
        pair_vals v;
        pair_load(o, in, p, &v);
        double cr = b * v.rc, rr = b * v.rr;
        m->rewards_chosen += cr;
        m->rewards_rejected += rr;
        m->rewards_accuracies += cr > rr ? 1.0 : 0.0;
        m->rewards_margins += cr - rr;
        m->logps_chosen += v.lc;
        m->logps_rejected += v.lr;
        mean_w += v.w;
        raw_sum += in->chosen_shared[p] + in->chosen_tail[p];
        n_tok += in->chosen_len[p];
        rew_sum += cr + rr;
    }
    m->rewards_chosen /= P;
    m->rewards_rejected /= P;
    m->rewards_accuracies /= P;
    m->rewards_margins /= P;
    m->logps_chosen /= P;
    m->logps_rejected /= P;
    mean_w /= P;

    /* the "sft" terms: TRL's loss types plus 0.24's rpo_alpha, which is the same term */
    double sft_weight = o->rpo_alpha_set ? o->rpo_alpha : 0.0;
    int has_sft = o->rpo_alpha_set;
    for (int i = 0; i < o->n_loss_types; i++)
        if (o->loss_type[i] == DPO_LOSS_SFT) sft_weight += o->loss_weights[i], has_sft = 1;
    if (has_sft && n_tok <= 0) /* TRL: the mean of no tokens is NaN */
        return hone_fail(err, "dpo loss: the 'sft' term (or rpo_alpha) needs at least one chosen completion token "
                              "in the batch, got none");

    double bco_delta = 0.0;
    if (o->bco_pair_running_mean && has_type(o, DPO_LOSS_BCO_PAIR)) {
        if (!state) return hone_fail(err, "dpo loss: bco_pair_running_mean needs a dpo_loss_state");
        /* TRL 0.24 RunningMoments.update with one value (count 1, variance 0), cast to float32 first */
        double x = (double)(float)(rew_sum / (2.0 * P));
        double delta = x - state->mean, tot = state->count + 1.0;
        double old_sum = state->var * state->count + delta * delta * state->count / tot;
        state->mean += delta / tot;
        state->var = old_sum / tot;
        state->count = tot;
        bco_delta = state->mean;
        m->has_bco_running_mean = 1;
        m->bco_running_mean = bco_delta;
    }

    double loss = 0.0;
    if (has_sft) {
        double nll = -raw_sum / n_tok;
        m->has_nll_loss = 1;
        m->nll_loss = nll;
        /* TRL expands the scalar over the batch, so WPO scales it by the mean weight */
        loss += sft_weight * nll * mean_w;
        for (int p = 0; p < P; p++) g_raw[p] = -sft_weight * mean_w / n_tok;
    }

    for (int i = 0; i < o->n_loss_types; i++) {
        dpo_loss_type t = o->loss_type[i];
        double wk = o->loss_weights[i], term = 0.0;
        if (t == DPO_LOSS_SFT) continue;
        if (t == DPO_LOSS_AOT || t == DPO_LOSS_AOT_UNPAIRED) {
            /* delta_k = k-th smallest of one quantity minus k-th smallest of the other; the gradient
             * goes back to the pair each sorted slot came from (torch.sort's backward) */
            int *i1 = out->sort_idx, *i2 = out->sort_idx + P;
            double *k1 = out->sort_key, *k2 = out->sort_key + P;
            int aot = t == DPO_LOSS_AOT;
            for (int p = 0; p < P; p++) {
                pair_vals v;
                pair_load(o, in, p, &v);
                /* aot: policy vs reference chosen-rejected log-ratios; aot_unpaired: chosen vs rejected */
                k1[p] = aot ? v.lc - v.lr : v.rc;
                k2[p] = aot ? (o->reference_free ? 0.0 : in->ref_chosen[p] - in->ref_rejected[p]) : v.rr;
            }
            argsort(i1, k1, P);
            argsort(i2, k2, P);
            for (int k = 0; k < P; k++) {
                double dd;
                term += aot_term(b, o->label_smoothing, k1[i1[k]] - k2[i2[k]], &dd);
                double g = wk * dd / P;
                if (aot) {
                    g_lc[i1[k]] += g;
                    g_lr[i1[k]] -= g;
                } else {
                    g_lc[i1[k]] += g;
                    g_lr[i2[k]] -= g;
                }
            }
        } else {
            for (int p = 0; p < P; p++) {
                pair_vals v;
                pair_load(o, in, p, &v);
                double dsc, dsr, drc, drr;
                double L = pair_loss(o, t, &v, bco_delta, &dsc, &dsr, &drc, &drr);
                term += L * v.w;
                double s = wk * v.w / P;
                g_lc[p] += s * (dsc * v.dsc + drc);
                g_lr[p] += s * (dsr * v.dsr + drr);
            }
        }
        loss += wk * (term / P);
    }
    out->loss = loss;

    /* chain rule to the four per-sequence sums: logps = shared + a*tail, raw = shared + tail */
    for (int p = 0; p < P; p++) {
        double glc = g_lc[p], glr = g_lr[p], graw = g_raw[p];
        out->d_chosen_shared[p] = glc + graw;
        out->d_chosen_tail[p] = a * glc + graw;
        out->d_rejected_shared[p] = glr;
        out->d_rejected_tail[p] = a * glr;
    }
    return 0;
}
