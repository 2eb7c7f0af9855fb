/* base/sha256.h — SHA-256 (FIPS 180-4), incremental. Used to key caches on everything that
 * determines them (e.g. precomputed DPO reference log-probs): a strong hash, so a stale cache
 * is never mistaken for a current one. */
#ifndef HONE_SHA256_H
#define HONE_SHA256_H
#include <stddef.h>
#include <stdint.h>

typedef struct hone_sha256 {
    uint32_t h[8];
    uint64_t len;        /* bytes hashed so far */
    uint8_t buf[64];     /* pending partial block */
    size_t nbuf;
} hone_sha256;

void sha256_init(hone_sha256 *s);
void sha256_update(hone_sha256 *s, const void *data, size_t n);
/* Finishes: 32 bytes into out. s must be re-initialised before reuse. */
void sha256_final(hone_sha256 *s, uint8_t out[32]);
/* 64 lowercase hex digits + NUL into hex. */
void sha256_hex(const uint8_t digest[32], char hex[65]);
#endif
