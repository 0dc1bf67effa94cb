/* SHA-256 (FIPS 180-4), for token hashes and the audit hash chain. */
#ifndef YG_SHA256_H
#define YG_SHA256_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32

struct sha256_ctx {
    uint32_t state[8];
    uint64_t length;         /* bytes hashed so far */
    uint8_t buf[64];
    size_t buf_len;
};

void sha256_init(struct sha256_ctx *ctx);
void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len);
void sha256_final(struct sha256_ctx *ctx, uint8_t out[SHA256_DIGEST_SIZE]);
void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_SIZE]);
/* PORTABLE: the plain C compression even where the CPU has the SHA
 * extensions (which are used by default); false: decide by the CPU again.
 * For tests that check both agree. */
void sha256_set_portable(bool portable);
/* Hex digest into out[65]. */
void sha256_hex(const void *data, size_t len, char out[2 * SHA256_DIGEST_SIZE + 1]);

#endif
