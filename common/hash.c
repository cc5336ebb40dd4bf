/*
 * hash.c: SHA-256 (FIPS 180-4) and MD5 (RFC 1321), written out plainly.
 *
 * Owns: the content hashes that identify images (sha256 in the store), the
 * weights file (sha256 recorded with every feature set) and the md5 check
 * of downloaded weights (Keras publishes md5 sums). Both hashes share one
 * shape: init, update with any number of byte runs, final to lowercase hex.
 * The *_file helpers read a file in 64 KiB slices, so memory is bounded.
 *
 * Not a general crypto library: no HMAC, no constant-time claims (nothing
 * here is secret), no SIMD. Speed is a few hundred MB/s, ample for photos
 * and a 59 MB weights file.
 */
#include "hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char hexdigits[] = "0123456789abcdef";

static void to_hex(const uint8_t *bytes, size_t n, char *hex) {
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = hexdigits[bytes[i] >> 4];
        hex[2 * i + 1] = hexdigits[bytes[i] & 15];
    }
    hex[2 * n] = '\0';
}

/* ---- the block buffering both hashes share ---------------------------- */

/* Compresses one 64-byte block into the state (sha256_block, md5_block). */
typedef void (*block_fn)(uint32_t *state, const uint8_t *p);

/* Feed len bytes to compress() in whole 64-byte blocks: top up the partial
 * block (*fill bytes in block[]) first, compress full blocks straight from
 * data, and keep the tail in block[] for the next call. */
static void blocks_update(uint32_t *state, block_fn compress, uint8_t block[64], size_t *fill,
                          const void *data, size_t len) {
    const uint8_t *p = data;
    if (*fill > 0) {
        size_t take = 64 - *fill < len ? 64 - *fill : len;
        memcpy(block + *fill, p, take);
        *fill += take;
        p += take;
        len -= take;
        if (*fill < 64)
            return;
        compress(state, block);
        *fill = 0;
    }
    for (; len >= 64; p += 64, len -= 64)
        compress(state, p);
    memcpy(block, p, len);
    *fill = len;
}

/* The padding of both (FIPS 180-4 5.1.1, RFC 1321 3.1-3.2): 0x80, zeros up
 * to 56 mod 64, then the message length in bits as 8 bytes, big-endian for
 * SHA-256 and little-endian for MD5. Leaves *fill at 0. */
static void blocks_pad(uint32_t *state, block_fn compress, uint8_t block[64], size_t *fill,
                       uint64_t bytes, int big_endian) {
    uint64_t bits = bytes * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (*fill < 56 ? 56 : 120) - *fill;
    for (int i = 0; i < 8; i++)
        pad[padlen + i] = (uint8_t)(bits >> (big_endian ? 56 - 8 * i : 8 * i));
    blocks_update(state, compress, block, fill, pad, padlen + 8);
}

/* The digest: the n state words as bytes, big- or little-endian. */
static void words_to_bytes(const uint32_t *w, int n, int big_endian, uint8_t *out) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (uint8_t)(w[i] >> (big_endian ? 24 - 8 * j : 8 * j));
}

/* ---- SHA-256 ---------------------------------------------------------- */

/* First 32 bits of the fractional parts of the cube roots of the first 64
 * primes (FIPS 180-4, 4.2.2). */
static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t ror32(uint32_t x, int n) {
    return (x >> n) | (x << (32 - n));
}

static inline uint32_t rol32(uint32_t x, int n) {
    return (x << n) | (x >> (32 - n));
}

/* One 64-byte block into the state (FIPS 180-4, 6.2.2). */
static void sha256_block(uint32_t state[8], const uint8_t *p) {
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 |
               (uint32_t)p[4 * t + 2] << 8 | (uint32_t)p[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = ror32(w[t - 15], 7) ^ ror32(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = ror32(w[t - 2], 17) ^ ror32(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int t = 0; t < 64; t++) {
        uint32_t S1 = ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = h + S1 + ch + sha256_k[t] + w[t];
        uint32_t S0 = ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + maj;
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
}

void bn_sha256_init(bn_sha256 *h) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(h->state, iv, sizeof iv);
    h->bytes = 0;
    h->fill = 0;
}

void bn_sha256_update(bn_sha256 *h, const void *data, size_t len) {
    h->bytes += len;
    blocks_update(h->state, sha256_block, h->block, &h->fill, data, len);
}

/* Pad with the message length big-endian, then write the digest. h must be
 * re-initialised before reuse. */
void bn_sha256_final(bn_sha256 *h, char hex[65]) {
    blocks_pad(h->state, sha256_block, h->block, &h->fill, h->bytes, 1);
    uint8_t out[32];
    words_to_bytes(h->state, 8, 1, out);
    to_hex(out, 32, hex);
}

void bn_sha256_hex(const void *data, size_t len, char hex[65]) {
    bn_sha256 h;
    bn_sha256_init(&h);
    bn_sha256_update(&h, data, len);
    bn_sha256_final(&h, hex);
}

/* ---- MD5 -------------------------------------------------------------- */

/* floor(abs(sin(i + 1)) * 2^32), RFC 1321 3.4. */
static const uint32_t md5_k[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

/* Per-round left rotations: four per round, repeated four times. */
static const uint8_t md5_r[4][4] = {
    {7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

/* One 64-byte block into the state (RFC 1321, 3.4); words little-endian. */
static void md5_block(uint32_t state[4], const uint8_t *p) {
    uint32_t x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        switch (i / 16) {
        case 0: f = (b & c) | (~b & d), g = i; break;
        case 1: f = (d & b) | (~d & c), g = (5 * i + 1) & 15; break;
        case 2: f = b ^ c ^ d, g = (3 * i + 5) & 15; break;
        default: f = c ^ (b | ~d), g = (7 * i) & 15; break;
        }
        uint32_t t = d;
        d = c;
        c = b;
        b = b + rol32(a + f + md5_k[i] + x[g], md5_r[i / 16][i & 3]);
        a = t;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
}

void bn_md5_init(bn_md5 *h) {
    h->state[0] = 0x67452301;
    h->state[1] = 0xefcdab89;
    h->state[2] = 0x98badcfe;
    h->state[3] = 0x10325476;
    h->bytes = 0;
    h->fill = 0;
}

void bn_md5_update(bn_md5 *h, const void *data, size_t len) {
    h->bytes += len;
    blocks_update(h->state, md5_block, h->block, &h->fill, data, len);
}

/* As SHA-256's padding and digest, but little-endian. */
void bn_md5_final(bn_md5 *h, char hex[33]) {
    blocks_pad(h->state, md5_block, h->block, &h->fill, h->bytes, 0);
    uint8_t out[16];
    words_to_bytes(h->state, 4, 0, out);
    to_hex(out, 16, hex);
}

void bn_md5_hex(const void *data, size_t len, char hex[33]) {
    bn_md5 h;
    bn_md5_init(&h);
    bn_md5_update(&h, data, len);
    bn_md5_final(&h, hex);
}

/* ---- files ------------------------------------------------------------ */

/* Feed a whole file to update(ctx, ...) in 64 KiB slices. Returns 0 or -1
 * with errno set (open or read error). */
static int hash_file(const char *path, void (*update)(void *, const void *, size_t), void *ctx) {
    enum { SLICE = 1 << 16 };
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t *buf = malloc(SLICE);
    if (!buf) {
        fclose(f);
        errno = ENOMEM;
        return -1;
    }
    size_t n;
    while ((n = fread(buf, 1, SLICE, f)) > 0)
        update(ctx, buf, n);
    int failed = ferror(f);
    int saved = errno;
    free(buf);
    fclose(f);
    if (failed) {
        errno = saved ? saved : EIO;
        return -1;
    }
    return 0;
}

static void sha256_update_cb(void *h, const void *p, size_t n) {
    bn_sha256_update(h, p, n);
}

static void md5_update_cb(void *h, const void *p, size_t n) {
    bn_md5_update(h, p, n);
}

int bn_sha256_file(const char *path, char hex[65]) {
    bn_sha256 h;
    bn_sha256_init(&h);
    if (hash_file(path, sha256_update_cb, &h) != 0)
        return -1;
    bn_sha256_final(&h, hex);
    return 0;
}

int bn_md5_file(const char *path, char hex[33]) {
    bn_md5 h;
    bn_md5_init(&h);
    if (hash_file(path, md5_update_cb, &h) != 0)
        return -1;
    bn_md5_final(&h, hex);
    return 0;
}
