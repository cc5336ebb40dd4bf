/*
 * vec_kernels.c: the distance kernels of the vector SQL functions and of
 * vec_knn (declared in vec_internal.h).
 *
 * Owns: dot products, squared L2, L1 and cosine of two float vectors, summed
 * in double, in two builds chosen at run time: portable C, and AVX-512 (16
 * floats a step, converted to double in two registers) on CPUs that have it.
 *
 * Both builds give the same bits. Element i is added to lane i % 16 of 16
 * double sums, in order; the lanes are then added pairwise, always in the
 * same tree (lane j += lane j + 8, then j + 4, j + 2, j + 1). The products
 * of two floats are exact in double, so a fused multiply-add gives the same
 * sum as a multiply then an add; for L2 the square of a difference is not
 * exact, so neither build fuses (the vec library is compiled with
 * -ffp-contract=off, and the AVX-512 code multiplies, then adds). Every SQL
 * function and vec_knn call these: the scalar SQL form and vec_knn give the
 * same distances to the last bit, on any machine.
 *
 * Why AVX-512: vec_knn ranks a feature set at the speed the vectors arrive
 * (memory, or SQLite's pages); the portable double loop runs at about
 * 2 GB/s of floats, which was as slow as reading them.
 */
#include "vec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define VK_X86 1
#endif

/* ---------------------------------------------------------------------------
 * Portable build
 * ------------------------------------------------------------------------- */

#define VK_LANES 16

static double vk_reduce(double *s) {
    for (int w = VK_LANES / 2; w >= 1; w /= 2)
        for (int j = 0; j < w; j++)
            s[j] += s[j + w];
    return s[0];
}

static double dot_c(const float *a, const float *b, int64_t n) {
    double s[VK_LANES] = {0};
    int64_t i = 0;
    for (; i + VK_LANES <= n; i += VK_LANES)
        for (int j = 0; j < VK_LANES; j++)
            s[j] += (double)a[i + j] * b[i + j];
    for (int j = 0; i + j < n; j++)
        s[j] += (double)a[i + j] * b[i + j];
    return vk_reduce(s);
}

static double l2sq_c(const float *a, const float *b, int64_t n) {
    double s[VK_LANES] = {0};
    int64_t i = 0;
    for (; i + VK_LANES <= n; i += VK_LANES)
        for (int j = 0; j < VK_LANES; j++) {
            double d = (double)a[i + j] - b[i + j];
            s[j] += d * d;
        }
    for (int j = 0; i + j < n; j++) {
        double d = (double)a[i + j] - b[i + j];
        s[j] += d * d;
    }
    return vk_reduce(s);
}

static double l1_c(const float *a, const float *b, int64_t n) {
    double s[VK_LANES] = {0};
    int64_t i = 0;
    for (; i + VK_LANES <= n; i += VK_LANES)
        for (int j = 0; j < VK_LANES; j++)
            s[j] += fabs((double)a[i + j] - b[i + j]);
    for (int j = 0; i + j < n; j++)
        s[j] += fabs((double)a[i + j] - b[i + j]);
    return vk_reduce(s);
}

/* dot(a, b), |a|^2 (when pa) and |b|^2 in one pass. */
static void cos3_c(const float *a, const float *b, int64_t n, double *dot, double *pa, double *qb) {
    double d[VK_LANES] = {0}, p[VK_LANES] = {0}, q[VK_LANES] = {0};
    int64_t i = 0;
    for (; i + VK_LANES <= n; i += VK_LANES)
        for (int j = 0; j < VK_LANES; j++) {
            double x = a[i + j], y = b[i + j];
            d[j] += x * y;
            p[j] += x * x;
            q[j] += y * y;
        }
    for (int j = 0; i + j < n; j++) {
        double x = a[i + j], y = b[i + j];
        d[j] += x * y;
        p[j] += x * x;
        q[j] += y * y;
    }
    *dot = vk_reduce(d);
    if (pa)
        *pa = vk_reduce(p);
    *qb = vk_reduce(q);
}

/* ---------------------------------------------------------------------------
 * AVX-512 build: the same lanes, two registers of 8 doubles (lanes 0-7 from
 * the low 8 floats of a step, 8-15 from the high 8); the tail is a masked
 * step that leaves the other lanes untouched.
 * ------------------------------------------------------------------------- */

#ifdef VK_X86
#define VK_AVX __attribute__((target("avx512f")))

VK_AVX static inline double vk_reduce_avx(__m512d lo, __m512d hi) {
    __m512d s = _mm512_add_pd(lo, hi);
    __m256d a = _mm256_add_pd(_mm512_castpd512_pd256(s), _mm512_extractf64x4_pd(s, 1));
    __m128d b = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    return _mm_cvtsd_f64(b) + _mm_cvtsd_f64(_mm_unpackhi_pd(b, b));
}

/* 16 floats at p (the first `rem` of them when rem < 16, zeros after) as
 * two registers of doubles. */
VK_AVX static inline void vk_load(const float *p, int rem, __m512d *lo, __m512d *hi) {
    __m512 x =
        rem >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps((__mmask16)((1u << rem) - 1), p);
    *lo = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
    *hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
}

/* Lane masks of the two registers for a tail of rem floats. */
#define VK_MLO(rem) ((__mmask8)((rem) >= 8 ? 0xff : (1u << (rem)) - 1))
#define VK_MHI(rem) ((__mmask8)((rem) <= 8 ? 0 : (1u << ((rem)-8)) - 1))

VK_AVX static double dot_avx(const float *a, const float *b, int64_t n) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    __m512d al, ah, bl, bh;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        vk_load(a + i, 16, &al, &ah);
        vk_load(b + i, 16, &bl, &bh);
        s0 = _mm512_fmadd_pd(al, bl, s0); /* exact products: fused or not, same sum */
        s1 = _mm512_fmadd_pd(ah, bh, s1);
    }
    if (i < n) {
        int rem = (int)(n - i);
        vk_load(a + i, rem, &al, &ah);
        vk_load(b + i, rem, &bl, &bh);
        s0 = _mm512_mask3_fmadd_pd(al, bl, s0, VK_MLO(rem));
        s1 = _mm512_mask3_fmadd_pd(ah, bh, s1, VK_MHI(rem));
    }
    return vk_reduce_avx(s0, s1);
}

VK_AVX static double l2sq_avx(const float *a, const float *b, int64_t n) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    __m512d al, ah, bl, bh;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        vk_load(a + i, 16, &al, &ah);
        vk_load(b + i, 16, &bl, &bh);
        __m512d dl = _mm512_sub_pd(al, bl), dh = _mm512_sub_pd(ah, bh);
        s0 = _mm512_add_pd(s0, _mm512_mul_pd(dl, dl)); /* not fused: d*d is rounded */
        s1 = _mm512_add_pd(s1, _mm512_mul_pd(dh, dh));
    }
    if (i < n) {
        int rem = (int)(n - i);
        vk_load(a + i, rem, &al, &ah);
        vk_load(b + i, rem, &bl, &bh);
        __m512d dl = _mm512_sub_pd(al, bl), dh = _mm512_sub_pd(ah, bh);
        s0 = _mm512_mask_add_pd(s0, VK_MLO(rem), s0, _mm512_mul_pd(dl, dl));
        s1 = _mm512_mask_add_pd(s1, VK_MHI(rem), s1, _mm512_mul_pd(dh, dh));
    }
    return vk_reduce_avx(s0, s1);
}

VK_AVX static double l1_avx(const float *a, const float *b, int64_t n) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    __m512d al, ah, bl, bh;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        vk_load(a + i, 16, &al, &ah);
        vk_load(b + i, 16, &bl, &bh);
        s0 = _mm512_add_pd(s0, _mm512_abs_pd(_mm512_sub_pd(al, bl)));
        s1 = _mm512_add_pd(s1, _mm512_abs_pd(_mm512_sub_pd(ah, bh)));
    }
    if (i < n) {
        int rem = (int)(n - i);
        vk_load(a + i, rem, &al, &ah);
        vk_load(b + i, rem, &bl, &bh);
        s0 = _mm512_mask_add_pd(s0, VK_MLO(rem), s0, _mm512_abs_pd(_mm512_sub_pd(al, bl)));
        s1 = _mm512_mask_add_pd(s1, VK_MHI(rem), s1, _mm512_abs_pd(_mm512_sub_pd(ah, bh)));
    }
    return vk_reduce_avx(s0, s1);
}

VK_AVX static void cos3_avx(const float *a, const float *b, int64_t n, double *dot, double *pa,
                            double *qb) {
    __m512d d0 = _mm512_setzero_pd(), d1 = d0, p0 = d0, p1 = d0, q0 = d0, q1 = d0;
    __m512d al, ah, bl, bh;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        vk_load(a + i, 16, &al, &ah);
        vk_load(b + i, 16, &bl, &bh);
        d0 = _mm512_fmadd_pd(al, bl, d0);
        d1 = _mm512_fmadd_pd(ah, bh, d1);
        p0 = _mm512_fmadd_pd(al, al, p0);
        p1 = _mm512_fmadd_pd(ah, ah, p1);
        q0 = _mm512_fmadd_pd(bl, bl, q0);
        q1 = _mm512_fmadd_pd(bh, bh, q1);
    }
    if (i < n) {
        int rem = (int)(n - i);
        __mmask8 ml = VK_MLO(rem), mh = VK_MHI(rem);
        vk_load(a + i, rem, &al, &ah);
        vk_load(b + i, rem, &bl, &bh);
        d0 = _mm512_mask3_fmadd_pd(al, bl, d0, ml);
        d1 = _mm512_mask3_fmadd_pd(ah, bh, d1, mh);
        p0 = _mm512_mask3_fmadd_pd(al, al, p0, ml);
        p1 = _mm512_mask3_fmadd_pd(ah, ah, p1, mh);
        q0 = _mm512_mask3_fmadd_pd(bl, bl, q0, ml);
        q1 = _mm512_mask3_fmadd_pd(bh, bh, q1, mh);
    }
    *dot = vk_reduce_avx(d0, d1);
    if (pa)
        *pa = vk_reduce_avx(p0, p1);
    *qb = vk_reduce_avx(q0, q1);
}

/* Four vectors against one query: q is loaded (and widened) once per step
 * for the four, instead of once per vector. At 25,088 dims the query (100
 * KB) does not fit the L1 cache, and reading it from L2 for every vector
 * held the scan to 5.1 GB/s against 7.8 at 1,024 (docs/PERFORMANCE.md,
 * Search). Each vector's lanes and sums are those of the one-vector kernel,
 * in the same order: the same bits. v: four vectors of n floats, stride
 * floats apart. */
#define VK_MANY 4

/* One step of the four: op(acc, q, v) on lanes masked by ml/mh. */
#define VK_STEP4(OP, rem, ml, mh)                                                                  \
    do {                                                                                           \
        __m512d ql, qh, vl, vh;                                                                    \
        vk_load(q + i, rem, &ql, &qh);                                                             \
        for (int k = 0; k < VK_MANY; k++) {                                                        \
            vk_load(v + k * stride + i, rem, &vl, &vh);                                            \
            s[k][0] = OP(s[k][0], ql, vl, ml);                                                     \
            s[k][1] = OP(s[k][1], qh, vh, mh);                                                     \
        }                                                                                          \
    } while (0)

VK_AVX static inline __m512d vk_op_dot(__m512d s, __m512d q, __m512d v, __mmask8 m) {
    return _mm512_mask3_fmadd_pd(q, v, s, m);
}
VK_AVX static inline __m512d vk_op_l2(__m512d s, __m512d q, __m512d v, __mmask8 m) {
    __m512d d = _mm512_sub_pd(q, v);
    return _mm512_mask_add_pd(s, m, s, _mm512_mul_pd(d, d)); /* not fused, as l2sq_avx */
}
VK_AVX static inline __m512d vk_op_l1(__m512d s, __m512d q, __m512d v, __mmask8 m) {
    return _mm512_mask_add_pd(s, m, s, _mm512_abs_pd(_mm512_sub_pd(q, v)));
}

#define VK_MANY_AVX(name, OP)                                                                      \
    VK_AVX static void name(const float *q, const float *v, int64_t stride, int64_t n,             \
                            double *out) {                                                         \
        __m512d s[VK_MANY][2];                                                                     \
        for (int k = 0; k < VK_MANY; k++)                                                          \
            s[k][0] = s[k][1] = _mm512_setzero_pd();                                               \
        int64_t i = 0;                                                                             \
        for (; i + 16 <= n; i += 16)                                                               \
            VK_STEP4(OP, 16, (__mmask8)0xff, (__mmask8)0xff);                                      \
        if (i < n) {                                                                               \
            int rem = (int)(n - i);                                                                \
            VK_STEP4(OP, rem, VK_MLO(rem), VK_MHI(rem));                                           \
        }                                                                                          \
        for (int k = 0; k < VK_MANY; k++)                                                          \
            out[k] = vk_reduce_avx(s[k][0], s[k][1]);                                              \
    }

VK_MANY_AVX(dot4_avx, vk_op_dot)
VK_MANY_AVX(l2sq4_avx, vk_op_l2)
VK_MANY_AVX(l1_4_avx, vk_op_l1)
#endif

/* ---------------------------------------------------------------------------
 * Dispatch
 * ------------------------------------------------------------------------- */

/* 1: AVX-512, 0: portable, -1: not chosen yet. Set once (a benign race:
 * every thread computes the same value); BN_VEC_PORTABLE=1 forces the
 * portable build. */
static int vk_which = -1;

static int vk_avx(void) {
    int w = __atomic_load_n(&vk_which, __ATOMIC_RELAXED);
    if (w < 0) {
        const char *env = getenv("BN_VEC_PORTABLE");
        w = 0;
#ifdef VK_X86
        __builtin_cpu_init();
        w = __builtin_cpu_supports("avx512f") && !(env && strcmp(env, "1") == 0);
#else
        (void)env;
#endif
        __atomic_store_n(&vk_which, w, __ATOMIC_RELAXED);
    }
    return w;
}

int bn_vec_kernels_avx512(int set) {
    if (set >= 0)
        __atomic_store_n(&vk_which, set ? 1 : 0, __ATOMIC_RELAXED);
    if (set > 0) {
#ifdef VK_X86
        __builtin_cpu_init();
        if (!__builtin_cpu_supports("avx512f"))
            __atomic_store_n(&vk_which, 0, __ATOMIC_RELAXED);
#else
        __atomic_store_n(&vk_which, 0, __ATOMIC_RELAXED);
#endif
    }
    return vk_avx();
}

#ifdef VK_X86
#define VK_CALL(avx, c) (vk_avx() ? (avx) : (c))
#else
#define VK_CALL(avx, c) (c)
#endif

double bn_vec_dot(const float *a, const float *b, int64_t n) {
    return VK_CALL(dot_avx(a, b, n), dot_c(a, b, n));
}

double bn_vec_l2sq(const float *a, const float *b, int64_t n) {
    return VK_CALL(l2sq_avx(a, b, n), l2sq_c(a, b, n));
}

double bn_vec_l1(const float *a, const float *b, int64_t n) {
    return VK_CALL(l1_avx(a, b, n), l1_c(a, b, n));
}

void bn_vec_dot_norm(const float *a, const float *b, int64_t n, double *dot, double *nb) {
#ifdef VK_X86
    if (vk_avx()) {
        cos3_avx(a, b, n, dot, NULL, nb);
        return;
    }
#endif
    cos3_c(a, b, n, dot, NULL, nb);
}

/* The distances of q to count vectors at v (n floats each, stride floats
 * apart), each equal to the one-vector kernel's, bit for bit: four at a time
 * where the AVX-512 build runs and the query is longer than vk_many_min
 * floats (bn_vec_kernels_many_min). Below, one at a time is faster: with the
 * query in L1 there is nothing to save, and four interleaved streams of a
 * few KB each defeat the hardware prefetcher (bench/bench_vec_kernel, one
 * thread, 200 MB, medians of 7, four against one: 0.65x at 1,024 dims,
 * 0.89x at 4,096, 1.10x at 5,120, 1.40x at 8,192, 1.55x at 25,088). */
static int64_t vk_many_min = 4096;

int64_t bn_vec_kernels_many_min(int64_t set) {
    if (set >= 0)
        __atomic_store_n(&vk_many_min, set, __ATOMIC_RELAXED);
    return __atomic_load_n(&vk_many_min, __ATOMIC_RELAXED);
}

typedef void (*vk_many_fn)(const float *, const float *, int64_t, int64_t, double *);
typedef double (*vk_one_fn)(const float *, const float *, int64_t);

static void vk_many(vk_many_fn four, vk_one_fn one, const float *q, const float *v, int64_t stride,
                    int64_t n, int64_t count, double *out) {
    int64_t i = 0;
#ifdef VK_X86
    if (four && n > __atomic_load_n(&vk_many_min, __ATOMIC_RELAXED) && vk_avx())
        for (; i + VK_MANY <= count; i += VK_MANY)
            four(q, v + i * stride, stride, n, out + i);
#else
    (void)four;
#endif
    for (; i < count; i++)
        out[i] = one(q, v + i * stride, n);
}

#ifdef VK_X86
#define VK_FOUR(f) (f)
#else
#define VK_FOUR(f) NULL
#endif

void bn_vec_dot_many(const float *q, const float *v, int64_t stride, int64_t n, int64_t count,
                     double *out) {
    vk_many(VK_FOUR(dot4_avx), bn_vec_dot, q, v, stride, n, count, out);
}

void bn_vec_l2sq_many(const float *q, const float *v, int64_t stride, int64_t n, int64_t count,
                      double *out) {
    vk_many(VK_FOUR(l2sq4_avx), bn_vec_l2sq, q, v, stride, n, count, out);
}

void bn_vec_l1_many(const float *q, const float *v, int64_t stride, int64_t n, int64_t count,
                    double *out) {
    vk_many(VK_FOUR(l1_4_avx), bn_vec_l1, q, v, stride, n, count, out);
}

/* n halves at p (little-endian, any alignment) as floats, for vec_knn's
 * scans of packed chunks: vcvtph2ps when the CPU has AVX-512 (16 a step),
 * bn_vec_f16_decode otherwise. Every finite half, infinity and zero decodes
 * to the same float either way; NaNs stay NaNs (their payload bits may
 * differ, which no distance can see). */
#ifdef VK_X86
VK_AVX static void f16_decode_avx(const unsigned char *p, float *out, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i,
                         _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 2 * i))));
    if (i < n)
        bn_vec_f16_decode(p + 2 * i, out + i, n - i);
}
#endif

void bn_vec_f16_decode_fast(const unsigned char *p, float *out, int64_t n) {
#ifdef VK_X86
    if (vk_avx()) {
        f16_decode_avx(p, out, n);
        return;
    }
#endif
    bn_vec_f16_decode(p, out, n);
}

/* 1 - cos from the dot product and squared norms. Undefined (NaN) when
 * either vector is zero, as in sqlite-vec, whose SQL result is then NULL.
 * Clamped to [0, 2] so rounding never gives a distance of -2e-16. */
double bn_vec_cosine_from(double dot, double na, double nb) {
    if (na == 0 || nb == 0)
        return NAN;
    double d = 1.0 - dot / sqrt(na * nb);
    if (d < 0)
        d = 0;
    if (d > 2)
        d = 2;
    return d;
}

/* Cosine distance in one pass over both vectors. */
double bn_vec_cosine(const float *a, const float *b, int64_t n) {
    double dot, na, nb;
#ifdef VK_X86
    if (vk_avx())
        cos3_avx(a, b, n, &dot, &na, &nb);
    else
#endif
        cos3_c(a, b, n, &dot, &na, &nb);
    return bn_vec_cosine_from(dot, na, nb);
}
