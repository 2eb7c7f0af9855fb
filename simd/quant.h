/* simd/quant.h — a frozen weight held in fewer bits than fp32 (QLoRA's base, issue 14):
 * bf16, int8 (LLM.int8-style absmax per row) or bitsandbytes' 4-bit NF4 / FP4 (blocks of
 * 64 with an fp32 absmax each, optionally "nested": the absmax themselves quantised to 8
 * bits in blocks of 256 around their mean, bitsandbytes' compress_statistics).
 *
 * Quantisation and dequantisation are bit-equal to bitsandbytes 0.50.x's CPU backend
 * (tests/reference/quant_ref.py, tests/test_quant.c):
 *   4-bit: absmax per block of 64 consecutive elements of the flattened (row-major) tensor;
 *     scaled = clamp(x * (1 / max(absmax, 1e-38)), -1, 1) (a trailing partial block divides:
 *     x / absmax, and stores its absmax clamped to 1e-38); the code is the bucket of scaled
 *     among the midpoints of the sorted codebook (torch.bucketize, right=False: a value on a
 *     midpoint takes the lower one); two codes per byte, the first element in the high
 *     nibble; an odd count pads with the code of 0. Dequantised: code[nibble] * absmax.
 *   nested: offset = mean(absmax) summed in torch's single-thread fp32 order (with more
 *     torch threads bitsandbytes' own offset varies with their count); absmax - offset
 *     quantised in blocks of 256 against the 256-entry signed dynamic map through
 *     bitsandbytes' 65536-bin lookup table (absmax2 per block); the dequantised block
 *     scale is code8[q] * absmax2 + offset (two fp32 roundings).
 *   FP4 code 8 (-0) dequantises to +0 when the row length is a multiple of 16 and to -0
 *     otherwise, as bitsandbytes' vector and scalar CPU paths do.
 *   int8: the weight rounded to fp16 first (bitsandbytes' Int8Params), scb = max|row|,
 *     q = round_half_even(w * (127 * (1 / scb))) (torch's 127.0 / t is a reciprocal times 127;
 *     an all-zero row codes 0); dequantised (q * scb) * (1/127 as fp32).
 *
 * The GEMMs that read such a weight are in simd/qgemm.c: the GEMM's B packing dequantises
 * short runs of the weight's rows straight into its packed panels (never the whole matrix,
 * nor a panel of it, in fp32), so the product is bitwise the table's GEMM (fp32, or bf16)
 * of the dequantised weight. */
#ifndef HONE_QUANT_H
#define HONE_QUANT_H
#include <stddef.h>
#include <stdint.h>

enum { HONE_Q_F32 = 0, HONE_Q_BF16 = 1, HONE_Q_INT8 = 2, HONE_Q_NF4 = 3, HONE_Q_FP4 = 4, HONE_Q_NTYPES };
#define HONE_Q_BLOCK 64       /* bitsandbytes' blocksize for 4-bit (transformers' default) */
#define HONE_Q_NEST_BLOCK 256 /* blocksize of the nested absmax quantisation */

typedef struct hone_qtensor {
    int type;           /* HONE_Q_* */
    int nested;         /* NF4/FP4: absmax held as 8 bits (use_bnb_nested_quant) */
    int rows, cols;     /* the weight's (out, in) shape, row-major */
    void *data;         /* f32: floats; bf16: uint16; int8: int8 (rows*cols); 4-bit: ceil(n/2) bytes */
    float *absmax;      /* 4-bit plain: (blocks); nested: (nested blocks) second-level absmax;
                         * int8: (rows) scb; NULL otherwise */
    uint8_t *qabsmax;   /* nested: (blocks) 8-bit absmax codes, else NULL */
    float offset;       /* nested: mean of the absmax */
    void *mem;          /* one allocation holding all of the above (owned) */
} hone_qtensor;

/* bitsandbytes' codebooks: NF4, FP4 (16 entries, in code order) and the signed dynamic
 * 8-bit map of the nested absmax (256, sorted, entry 0 = -1 as bitsandbytes' CPU quantiser
 * leaves it) */
extern const float hone_q_nf4[16], hone_q_fp4[16];
const float *quant_code4(int type);
const float *quant_dynamic_map(void);

/* Bytes a (rows, cols) weight takes held as type (nested for 4-bit): data + statistics. */
size_t qweight_bytes(int type, int nested, long rows, long cols);
/* "float32", "bfloat16", "int8", "nf4", "fp4" */
const char *quant_type_name(int type);
int quant_type_from_name(const char *s); /* -1 when none */

/* Allocates t for a (rows, cols) weight of type (zeroed). Returns 0, -1 out of memory. */
int qtensor_alloc(hone_qtensor *t, int type, int nested, int rows, int cols);
void qtensor_free(hone_qtensor *t);
/* Quantises the fp32 (rows, cols) x into an allocated t (threads over blocks; bitwise the
 * same at any thread count). bf16 rounds to nearest even. */
void qtensor_quantize(hone_qtensor *t, const float *x);
/* The same from bf16 source values (bf16 held: a straight copy). */
void qtensor_quantize_bf16(hone_qtensor *t, const uint16_t *x, float *scratch /* rows*cols floats or NULL */);
/* dst (r1-r0, c1-c0; row stride ld) = rows [r0, r1), columns [c0, c1) of t dequantised,
 * through the kernel table. Single-threaded (callers split the rows). */
void qtensor_dequant_rect(const hone_qtensor *t, int r0, int r1, int c0, int c1, float *dst, size_t ld);
/* The steps of 4-bit quantisation, for tests: the codes of x into t->data with the plain
 * absmax per block into absmax (nb floats); the nested offset of those absmax (torch's
 * mean); the nested 8-bit quantisation of absmax around offset (absmax is overwritten). */
void quant_4bit_codes(const hone_qtensor *t, const float *x, float *absmax);
float quant_absmax_mean(const float *absmax, size_t nb);
void qtensor_nest_absmax(hone_qtensor *t, float *absmax, float offset);
/* The block scales of 4-bit blocks [b0, b1) into out (decodes the nested absmax). */
void qtensor_block_scales(const hone_qtensor *t, size_t b0, size_t b1, float *out);

/* Scalar references of the kernel-table entries (kernels.h), for tests:
 * dst[k] = code[nibble(i0 + k)] * scale[(i0 + k) / 64 - (i0 / 64)] for k < n;
 * dst[k] = ((float)q[k] * s) * (1/127) */
void dequant_4bit_scalar(float *dst, const uint8_t *packed, size_t i0, int n, const float *code, const float *scale);
void dequant_int8_scalar(float *dst, const int8_t *q, int n, float s);
void dropout_f32_scalar(float *y, const float *x, size_t i0, size_t n, float p, uint64_t seed, int acc);

/* --- simd/qgemm.c: products with a held weight W (rows = OC, cols = IC) --- */
/* Y (N, OC; row stride ldy) = beta * Y + X (N, IC; ldx) W^T */
void qgemm_xwt(int N, const float *X, int ldx, const hone_qtensor *W, float beta, float *Y, int ldy);
/* dX (N, IC; ldx) = beta * dX + dY (N, OC; ldy) W */
void qgemm_xw(int N, const float *dY, int ldy, const hone_qtensor *W, float beta, float *dX, int ldx);
/* The same two with bf16 operands (kernels.h gemm_bf16's contract on the dequantised W: the
 * `bf16: true` products); the outputs are not rounded (the layer does that) */
void qgemm_xwt_bf16(int N, const float *X, int ldx, const hone_qtensor *W, float beta, float *Y, int ldy);
void qgemm_xw_bf16(int N, const float *dY, int ldy, const hone_qtensor *W, float beta, float *dX, int ldx);
#endif
