/*
 * f16_fma.h: binary16 arithmetic in software, bit for bit what the CPU's
 * avx512_fp16 instructions give: the FP16 Winograd products' emulation
 * (winograd_fp16.h, $BN_FP16_EMULATE) and its test (tests/test_fp16.c,
 * against exact sums in binary128). Header-only: called per lane in a hot
 * loop.
 */
#ifndef BN_F16_FMA_H
#define BN_F16_FMA_H

#include <stdint.h>
#include <string.h>

/* binary16 -> float, exact. */
static inline float bn_f16_float(uint16_t h) {
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff, x = (uint32_t)(h & 0x8000) << 16;
    float f;
    if (e == 0) { /* zero or subnormal */
        f = (float)m * 0x1p-24f;
        return h & 0x8000 ? -f : f;
    }
    x |= e == 31 ? 0x7f800000u | m << 13 : (e + 112) << 23 | m << 13;
    memcpy(&f, &x, sizeof f);
    return f;
}

/* s + t (t: the error of the double s as a sum, |t| at most half an ulp of
 * s) rounded once to binary16, nearest even, as the exact sum would be:
 * t decides only ties and exact halves. */
static inline uint16_t bn_f16_round(double s, double t) {
    uint64_t x;
    memcpy(&x, &s, sizeof x);
    const uint16_t sign = (uint16_t)((x >> 48) & 0x8000);
    const int e = (int)((x >> 52) & 0x7ff);
    if (e == 0x7ff) /* Inf or NaN */
        return (x & 0xfffffffffffffull) ? 0x7e00 : sign | 0x7c00;
    if (e == 0) /* zero, or far below binary16's smallest subnormal */
        return sign;
    if (sign)
        t = -t;                              /* t now says which way |s + t| lies from |s| */
    const int E = e - 1023;                  /* |s| = m 2^(E - 52), m 53 bits */
    const int shift = E < -14 ? 28 - E : 42; /* keep 11 bits, fewer below 2^-14 */
    if (shift > 62)
        return sign; /* below 2^-34: rounds to zero */
    const uint64_t m = (x & 0xfffffffffffffull) | 1ull << 52, half = 1ull << (shift - 1);
    uint64_t q = m >> shift, rem = m & ((1ull << shift) - 1);
    if (rem > half || (rem == half && (t > 0 || (t == 0 && (q & 1)))))
        q++;
    if (E < -14) /* q 2^-24: a subnormal, or 2^-14 (q = 1024) exactly */
        return sign | (uint16_t)q;
    int ex = E;
    if (q == 2048) {
        q = 1024;
        ex++;
    }
    return ex > 15 ? sign | 0x7c00 : sign | (uint16_t)((ex + 15) << 10) | (uint16_t)(q & 0x3ff);
}

/* vfmadd231ph for one lane: c + a b rounded once. The product of two
 * binary16 is exact in float; their sum with c in double, whose rounding
 * error (TwoSum) decides ties. */
static inline uint16_t bn_f16_fma(float a, float b, uint16_t c) {
    double p = (double)(a * b), cv = bn_f16_float(c);
    double s = p + cv, bp = s - p, t = (p - (s - bp)) + (cv - bp);
    return bn_f16_round(s, t);
}

#endif
