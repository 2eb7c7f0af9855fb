/* generate/sample.c — choosing the next token (generate.h): transformers' logits processors
 * (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper,
 * TopPLogitsWarper, MinPLogitsWarper, in generate's order) and the seeded draw;
 * plus the stop-string helpers used while streaming. */
#include "generate/generate.h"
#include "base/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void sampling_defaults(hone_sampling *s) {
    s->temperature = 0.f;
    s->top_k = 0;
    s->top_p = 1.f;
    s->min_p = 0.f;
    s->repetition_penalty = 1.f;
}

int sampling_check(const hone_sampling *s, hone_error *err) {
    if (!(s->temperature >= 0.f) || !isfinite(s->temperature))
        return hone_fail(err, "--temperature %g: must be a finite number >= 0 (0 is greedy)", s->temperature);
    if (s->top_k < 0) return hone_fail(err, "--top-k %d: must be >= 0 (0 is off)", s->top_k);
    if (!(s->top_p > 0.f && s->top_p <= 1.f)) return hone_fail(err, "--top-p %g: must be in (0, 1]", s->top_p);
    if (!(s->min_p >= 0.f && s->min_p <= 1.f)) return hone_fail(err, "--min-p %g: must be in [0, 1]", s->min_p);
    if (!(s->repetition_penalty > 0.f) || !isfinite(s->repetition_penalty))
        return hone_fail(err, "--repetition-penalty %g: must be a finite number > 0", s->repetition_penalty);
    return 0;
}

int sampler_init(hone_sampler *sp, int V, hone_error *err) {
    sp->V = V;
    sp->vals = hone_alloc(sizeof(float) * V, err);
    sp->idx = hone_alloc(sizeof(int32_t) * V, err);
    if (!sp->vals || !sp->idx) { sampler_free(sp); return hone_fail_prefix(err, "sampler for %d tokens", V); }
    return 0;
}

void sampler_free(hone_sampler *sp) {
    free(sp->vals);
    free(sp->idx);
    sp->vals = NULL;
    sp->idx = NULL;
}

/* descending by value, ties by index (a fixed order) */
static int greater(const float *v, int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); }

/* Rearranges idx[0..n) so its first m entries are the m largest of v, sorted
 * descending (quickselect, then a shell sort of the head). */
static void top_m(const float *v, int32_t *idx, int n, int m) {
    int lo = 0, hi = n - 1;
    while (lo < hi) { /* quickselect for position m-1 */
        int32_t pv = idx[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (greater(v, idx[i], pv)) i++;
            while (greater(v, pv, idx[j])) j--;
            if (i <= j) { int32_t t = idx[i]; idx[i] = idx[j]; idx[j] = t; i++; j--; }
        }
        if (m - 1 <= j) hi = j;
        else if (m - 1 >= i) lo = i;
        else break;
    }
    /* shell sort of the head (m is small or the call is rare) */
    for (int gap = m / 2; gap > 0; gap /= 2)
        for (int i = gap; i < m; i++) {
            int32_t t = idx[i];
            int j = i;
            for (; j >= gap && greater(v, t, idx[j - gap]); j -= gap) idx[j] = idx[j - gap];
            idx[j] = t;
        }
}

static float row_max(const float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

void sampling_process(const hone_sampling *s, hone_sampler *sp, float *logits, const uint8_t *seen) {
    int V = sp->V;
    if (seen && s->repetition_penalty != 1.f) {
        float pen = s->repetition_penalty;
        for (int i = 0; i < V; i++)
            if (seen[i]) logits[i] = logits[i] < 0.f ? logits[i] * pen : logits[i] / pen;
    }
    if (s->temperature <= 0.f) return; /* greedy: transformers applies no warpers */
    if (s->temperature != 1.f)
        for (int i = 0; i < V; i++) logits[i] = logits[i] / s->temperature;
    if (s->top_k > 0 && s->top_k < V) {
        /* keep every logit >= the k-th largest (ties kept, as torch.topk's threshold) */
        for (int i = 0; i < V; i++) sp->idx[i] = i;
        top_m(logits, sp->idx, V, s->top_k);
        float kth = logits[sp->idx[s->top_k - 1]];
        for (int i = 0; i < V; i++)
            if (logits[i] < kth) logits[i] = -INFINITY;
    }
    if (s->top_p < 1.f) {
        /* transformers removes the ascending-sorted tokens whose cumulative
         * probability is <= 1 - top_p: descending, a token stays while the mass
         * strictly above it is < top_p. Only the head of the order is sorted. */
        float mx = row_max(logits, V);
        double sum = 0.0;
        for (int i = 0; i < V; i++) sum += exp((double)logits[i] - mx);
        for (int i = 0; i < V; i++) sp->idx[i] = i;
        int m = V < 256 ? V : 256, keep = -1;
        for (;;) {
            top_m(logits, sp->idx, V, m);
            double above = 0.0;
            for (int r = 0; r < m; r++) {
                if (r > 0 && !(1.0 - above > 1.0 - (double)s->top_p)) { keep = r; break; }
                above += exp((double)logits[sp->idx[r]] - mx) / sum;
            }
            if (keep >= 0 || m == V) break;
            m = m * 4 < V ? m * 4 : V;
        }
        if (keep >= 0) /* idx[keep..V) all rank below the last kept token */
            for (int r = keep; r < V; r++) logits[sp->idx[r]] = -INFINITY;
    }
    if (s->min_p > 0.f) {
        float mx = row_max(logits, V);
        double sum = 0.0;
        for (int i = 0; i < V; i++) sum += exp((double)logits[i] - mx);
        double thr = (double)s->min_p / sum; /* min_p * top probability */
        for (int i = 0; i < V; i++)
            if (exp((double)logits[i] - mx) / sum < thr && logits[i] != mx) logits[i] = -INFINITY;
    }
}

int32_t sampling_pick(const hone_sampling *s, const float *logits, int V, hone_rng *rng) {
    float mx = -INFINITY;
    int32_t best = 0;
    for (int i = 0; i < V; i++)
        if (logits[i] > mx) { mx = logits[i]; best = i; }
    if (s->temperature <= 0.f || !isfinite(mx)) return best;
    double sum = 0.0;
    for (int i = 0; i < V; i++) sum += exp((double)logits[i] - mx);
    double u = rng_uniform_f64(rng) * sum, acc = 0.0;
    int32_t last = best;
    for (int i = 0; i < V; i++) {
        if (logits[i] == -INFINITY) continue;
        acc += exp((double)logits[i] - mx);
        last = i;
        if (acc > u) return i;
    }
    return last;
}

long gen_stop_find(const char *text, size_t len, const char *const *stops, int n_stops) {
    long best = -1;
    for (int i = 0; i < n_stops; i++) {
        size_t sl = strlen(stops[i]);
        if (!sl) continue;
        const char *p = memmem(text, len, stops[i], sl);
        if (p && (best < 0 || p - text < best)) best = p - text;
    }
    return best;
}

size_t gen_stop_holdback(const char *text, size_t len, const char *const *stops, int n_stops) {
    size_t hold = 0;
    for (int i = 0; i < n_stops; i++) {
        size_t sl = strlen(stops[i]);
        for (size_t k = sl > 0 ? sl - 1 : 0; k > hold; k--)
            if (k <= len && !memcmp(text + len - k, stops[i], k)) { hold = k; break; }
    }
    return hold;
}
