/* simd/ggml_quant.h — llama.cpp's (ggml's) tensor block formats, bit for bit.
 *
 * GGUF files store each tensor as rows of blocks; this header names the ggml types hone
 * writes and reads, their block sizes, and the quantisers / dequantisers. The quantisers
 * are ports of ggml's reference code (quantize_row_*_ref in ggml-quants.c, what
 * llama-quantize runs without an importance matrix), in the same floating-point order, so
 * a tensor quantised here is byte-identical to llama.cpp's. q8_0 and q4_0 have ISA (AVX2,
 * AVX-512, NEON) versions in the kernel table (hone_kt.quant_q8_0 / quant_q4_0), bitwise equal to the
 * scalar reference here; the k-quants (q4_K, q6_K) and q5_0 are scalar only (export-time
 * work, run once per tensor).
 *
 * Block layouts (little-endian, fp16 scales):
 *   q8_0 (32 values, 34 bytes): d, int8 qs[32]              x = d * q
 *   q4_0 (32, 18): d, uint8 qs[16] (low nibble j, high j+16) x = d * (q - 8)
 *   q5_0 (32, 22): d, uint8 qh[4], qs[16]                    x = d * (q - 16)
 *   q4_K (256, 144): d, dmin, uint8 scales[12] (8 x 6-bit scale + 6-bit min), qs[128]
 *   q6_K (256, 210): uint8 ql[128], qh[64], int8 scales[16], d */
#ifndef HONE_GGML_QUANT_H
#define HONE_GGML_QUANT_H
#include <stddef.h>
#include <stdint.h>

/* ggml_type values as GGUF stores them */
enum {
    GGML_T_F32 = 0, GGML_T_F16 = 1, GGML_T_Q4_0 = 2, GGML_T_Q5_0 = 6, GGML_T_Q8_0 = 8,
    GGML_T_Q4_K = 12, GGML_T_Q6_K = 14, GGML_T_BF16 = 30
};

/* values per block (1 for f32/f16/bf16), bytes per block; 0 for a type hone does not know */
int ggml_type_block(int type);
size_t ggml_type_bytes(int type);
/* "f32", "q4_K", ... or NULL */
const char *ggml_type_name(int type);
/* bytes of a row of n values (n a multiple of the block), 0 when not a multiple or unknown */
size_t ggml_row_bytes(int type, int64_t n);

/* fp16 as ggml rounds it (round to nearest even, subnormals, inf/NaN kept) */
uint16_t ggml_f32_to_f16(float f);
float ggml_f16_to_f32(uint16_t h);

/* Scalar references: n values (a multiple of the type's block) from x into y. */
void ggml_quant_q8_0_ref(const float *x, void *y, int64_t n);
void ggml_quant_q4_0_ref(const float *x, void *y, int64_t n);
void ggml_quant_q5_0_ref(const float *x, void *y, int64_t n);
void ggml_quant_q4_K_ref(const float *x, void *y, int64_t n);
void ggml_quant_q6_K_ref(const float *x, void *y, int64_t n);

/* n values of type `type` (any of the enum) from src into fp32 y, as ggml's dequantize_row_*.
 * Returns -1 for a type hone does not know or n not a multiple of its block. */
int ggml_dequant_row(int type, const void *src, float *y, int64_t n);

/* One row of n fp32 values into type `type` (f32, f16, bf16 or a quantised type) through the
 * kernel table where it has the type. Returns -1 as above. */
int ggml_quant_row(int type, const float *x, void *y, int64_t n);

struct hone_kernels;
/* kernel-table entries (dispatch.c calls these after the matching kernels_fill_*) */
void ggml_quant_fill_scalar(struct hone_kernels *t);
void ggml_quant_fill_avx2(struct hone_kernels *t);
void ggml_quant_fill_avx512(struct hone_kernels *t);
void ggml_quant_fill_neon(struct hone_kernels *t);
#endif
