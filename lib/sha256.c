#include <config.h>
#include "sha256.h"

#include <stdbool.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHA_NI_PATH 1
#endif

#include "util.h"

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block_portable(uint32_t *state, const uint8_t *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, h;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t) p[4 * i] << 24 | (uint32_t) p[4 * i + 1] << 16 |
               (uint32_t) p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = state[0]; b = state[1]; c = state[2]; d = state[3];
    e = state[4]; f = state[5]; g = state[6]; h = state[7];
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = h + S1 + ch + K[i] + w[i];
        uint32_t S0 = ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + maj;
        h = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    state[0] += a; state[1] += b; state[2] += c; state[3] += d;
    state[4] += e; state[5] += f; state[6] += g; state[7] += h;
}

#ifdef HAVE_SHA_NI_PATH
/* The same compression with the x86 SHA extensions (SHA-NI: Intel since
 * Ice Lake/Goldmont, AMD since Zen), ~10x fewer instructions per block;
 * the audit chain hashes every entry (6.5 per VM in the VM loop).  The
 * state is kept as ABEF/CDGH, the order sha256rnds2 works in; each
 * 4-word group of the message schedule is msg2(msg1(W[g-4], W[g-3]) +
 * W[g-2..g-1] shifted by one word, W[g-1]). */
__attribute__((target("sha,sse4.1,ssse3")))
static void sha256_block_shani(uint32_t *state, const uint8_t *p)
{
    const __m128i byteswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *) &state[0]);            /* A B C D */
    __m128i state1 = _mm_loadu_si128((const __m128i *) &state[4]);         /* E F G H */
    tmp = _mm_shuffle_epi32(tmp, 0xB1);
    state1 = _mm_shuffle_epi32(state1, 0x1B);
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);                      /* ABEF */
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);                           /* CDGH */
    const __m128i abef = state0, cdgh = state1;

    __m128i w[16];
    for (int g = 0; g < 16; g++) {
        if (g < 4) {
            w[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *) (p + 16 * g)), byteswap);
        } else {
            __m128i x = _mm_sha256msg1_epu32(w[g - 4], w[g - 3]);
            x = _mm_add_epi32(x, _mm_alignr_epi8(w[g - 1], w[g - 2], 4));
            w[g] = _mm_sha256msg2_epu32(x, w[g - 1]);
        }
        __m128i msg = _mm_add_epi32(w[g], _mm_loadu_si128((const __m128i *) &K[4 * g]));
        state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
        msg = _mm_shuffle_epi32(msg, 0x0E);
        state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
    }
    state0 = _mm_add_epi32(state0, abef);
    state1 = _mm_add_epi32(state1, cdgh);

    tmp = _mm_shuffle_epi32(state0, 0x1B);                                 /* FEBA */
    state1 = _mm_shuffle_epi32(state1, 0xB1);                              /* DCHG */
    state0 = _mm_blend_epi16(tmp, state1, 0xF0);                           /* DCBA */
    state1 = _mm_alignr_epi8(state1, tmp, 8);                              /* HGFE */
    _mm_storeu_si128((__m128i *) &state[0], state0);
    _mm_storeu_si128((__m128i *) &state[4], state1);
}

static bool cpu_has_sha_ni(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3))
        return false;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA);
}
#endif

/* 1: SHA-NI, 0: portable, -1: not decided yet (the first block decides). */
static int use_sha_ni = -1;

void sha256_set_portable(bool portable)
{
    use_sha_ni = portable ? 0 : -1;
}

static void sha256_block(struct sha256_ctx *ctx, const uint8_t *p)
{
#ifdef HAVE_SHA_NI_PATH
    int use = __atomic_load_n(&use_sha_ni, __ATOMIC_RELAXED);
    if (use < 0) {
        use = cpu_has_sha_ni();
        __atomic_store_n(&use_sha_ni, use, __ATOMIC_RELAXED);
    }
    if (use) {
        sha256_block_shani(ctx->state, p);
        return;
    }
#endif
    sha256_block_portable(ctx->state, p);
}

void sha256_init(struct sha256_ctx *ctx)
{
    static const uint32_t init[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    };
    memcpy(ctx->state, init, sizeof init);
    ctx->length = 0;
    ctx->buf_len = 0;
}

void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len)
{
    const uint8_t *p = data;
    ctx->length += len;
    if (ctx->buf_len) {
        size_t take = 64 - ctx->buf_len < len ? 64 - ctx->buf_len : len;
        memcpy(ctx->buf + ctx->buf_len, p, take);
        ctx->buf_len += take;
        p += take;
        len -= take;
        if (ctx->buf_len < 64)
            return;
        sha256_block(ctx, ctx->buf);
        ctx->buf_len = 0;
    }
    for (; len >= 64; p += 64, len -= 64)
        sha256_block(ctx, p);
    memcpy(ctx->buf, p, len);
    ctx->buf_len = len;
}

void sha256_final(struct sha256_ctx *ctx, uint8_t out[SHA256_DIGEST_SIZE])
{
    uint64_t bits = ctx->length * 8;
    /* 0x80, zeros up to 56 bytes into a block, then the length in bits. */
    ctx->buf[ctx->buf_len++] = 0x80;
    if (ctx->buf_len > 56) {
        memset(ctx->buf + ctx->buf_len, 0, 64 - ctx->buf_len);
        sha256_block(ctx, ctx->buf);
        ctx->buf_len = 0;
    }
    memset(ctx->buf + ctx->buf_len, 0, 56 - ctx->buf_len);
    for (int i = 0; i < 8; i++)
        ctx->buf[56 + i] = (uint8_t) (bits >> (56 - 8 * i));
    sha256_block(ctx, ctx->buf);
    ctx->buf_len = 0;
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t) (ctx->state[i] >> 24);
        out[4 * i + 1] = (uint8_t) (ctx->state[i] >> 16);
        out[4 * i + 2] = (uint8_t) (ctx->state[i] >> 8);
        out[4 * i + 3] = (uint8_t) ctx->state[i];
    }
}

void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_SIZE])
{
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, data, len);
    sha256_final(&ctx, out);
}

void sha256_hex(const void *data, size_t len, char out[2 * SHA256_DIGEST_SIZE + 1])
{
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256(data, len, d);
    hex_encode(d, sizeof d, out);
}
