/*
 * f16_broadcast: how the FP16 products kernel should get a tile's binary16
 * value into all 32 lanes (issue 16 item 1). One thread, data in L1, the
 * kernel's own loop (14 rows of V, one line of U per step, 32 steps per
 * chunk, 256 channels), three ways:
 *
 *   dword     V as the value twice in 4 bytes, vpbroadcastd (a plain load)
 *             then vfmadd231ph from the register: what winograd_fp16.h does
 *   embedded  V in 2 bytes, vfmadd231ph with a {1to32} memory operand
 *   word      V in 2 bytes, vpbroadcastw into a register, then vfmadd231ph
 *
 * V in 2 bytes halves what the products read of V, which is what limits
 * FP16 in the network (docs/PERFORMANCE.md, "FP16 products"); the question
 * is what the broadcast costs. Prints G multiply-adds/s per way (best of 5
 * runs of 0.2 s) and the ratio to the instruction's peak measured the same
 * way (14 independent vfmadd231ph on registers).
 *
 *   build/bench/f16_broadcast           (needs avx512_fp16; exits 77 without)
 */
#include "cpu.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)

typedef float v16 __attribute__((vector_size(64)));
#define TARGET __attribute__((target("avx512f,avx512bw"), noinline))
#define ROWS 14
#define K 256
#define CHUNK 32

/* The row addresses of winograd_fp16.h's wg_f16_chunk: four bases, lda a
 * scaled index. */
#define EACH_ROW(X)                                                                                \
    X(0, "(%[a0])")                                                                                \
    X(1, "(%[a0],%[l],1)")                                                                         \
    X(2, "(%[a0],%[l],2)")                                                                         \
    X(3, "(%[a3])")                                                                                \
    X(4, "(%[a4])")                                                                                \
    X(5, "(%[a3],%[l],2)")                                                                         \
    X(6, "(%[a4],%[l],2)")                                                                         \
    X(7, "(%[a3],%[l],4)")                                                                         \
    X(8, "(%[a0],%[l],8)")                                                                         \
    X(9, "(%[a9])")                                                                                \
    X(10, "(%[a9],%[l],1)")                                                                        \
    X(11, "(%[a3],%[l],8)")                                                                        \
    X(12, "(%[a4],%[l],8)")                                                                        \
    X(13, "(%[a9],%[l],4)")
#define ZERO(R, A) "vpxord %[c" #R "], %[c" #R "], %[c" #R "]\n\t"
#define DWORD(R, A) "vpbroadcastd " A ", %[s]\n\tvfmadd231ph %[s], %[u], %[c" #R "]\n\t"
#define EMBEDDED(R, A) "vfmadd231ph " A "%{1to32%}, %[u], %[c" #R "]\n\t"
#define WORD(R, A) "vpbroadcastw " A ", %[s]\n\tvfmadd231ph %[s], %[u], %[c" #R "]\n\t"
#define SETUP                                                                                      \
    "lea (%[a0],%[l],2), %[a3]\n\tadd %[l], %[a3]\n\tlea (%[a0],%[l],4), %[a4]\n\t"                \
    "lea (%[a0],%[l],8), %[a9]\n\tadd %[l], %[a9]\n\t"
#define OPERANDS                                                                                   \
    [a0] "+r"(pa), [b] "+r"(pb), [n] "+r"(n), [a3] "=&r"(a3), [a4] "=&r"(a4), [a9] "=&r"(a9),      \
        [u] "=&v"(u), [s] "=&v"(s), [c0] "=&v"(c[0]), [c1] "=&v"(c[1]), [c2] "=&v"(c[2]),          \
        [c3] "=&v"(c[3]), [c4] "=&v"(c[4]), [c5] "=&v"(c[5]), [c6] "=&v"(c[6]), [c7] "=&v"(c[7]),  \
        [c8] "=&v"(c[8]), [c9] "=&v"(c[9]), [c10] "=&v"(c[10]), [c11] "=&v"(c[11]),                \
        [c12] "=&v"(c[12]), [c13] "=&v"(c[13])
/* One chunk: STEP per row, ESIZE bytes per element of V. */
#define CHUNK_ASM(STEP, ESIZE)                                                                     \
    __asm__ volatile(EACH_ROW(ZERO) SETUP "1:\n\tvmovdqa64 (%[b]), %[u]\n\t" EACH_ROW(             \
                         STEP) "add $" #ESIZE ", %[a0]\n\tadd $" #ESIZE ", %[a3]\n\tadd $" #ESIZE  \
                               ", %[a4]\n\tadd $" #ESIZE                                           \
                               ", %[a9]\n\tadd $64, %[b]\n\tdec %[n]\n\tjnz 1b"                    \
                     : OPERANDS                                                                    \
                     : [l] "r"(lbytes)                                                             \
                     : "memory")

enum { DWORD_WAY, EMBEDDED_WAY, WORD_WAY };

static TARGET void chunk(int way, v16 *c, const char *a, size_t lbytes, const char *b) {
    const char *pa = a, *pb = b, *a3, *a4, *a9;
    long n = CHUNK;
    v16 u, s;
    if (way == DWORD_WAY)
        CHUNK_ASM(DWORD, 4);
    else if (way == EMBEDDED_WAY)
        CHUNK_ASM(EMBEDDED, 2);
    else
        CHUNK_ASM(WORD, 2);
}

/* 14 independent vfmadd231ph per iteration, n iterations: the peak. */
static TARGET void peak(long n) {
    v16 c[ROWS], x = {0};
    __asm__ volatile(EACH_ROW(ZERO) "1:\n\t"
#define PEAK(R, A) "vfmadd231ph %[x], %[x], %[c" #R "]\n\t"
                     EACH_ROW(PEAK) "dec %[n]\n\tjnz 1b"
                     : [n] "+r"(n), [c0] "=&v"(c[0]), [c1] "=&v"(c[1]), [c2] "=&v"(c[2]),
                       [c3] "=&v"(c[3]), [c4] "=&v"(c[4]), [c5] "=&v"(c[5]), [c6] "=&v"(c[6]),
                       [c7] "=&v"(c[7]), [c8] "=&v"(c[8]), [c9] "=&v"(c[9]), [c10] "=&v"(c[10]),
                       [c11] "=&v"(c[11]), [c12] "=&v"(c[12]), [c13] "=&v"(c[13])
                     : [x] "v"(x));
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* G multiply-adds/s of `way` (or the peak, way < 0), best of 5 runs. */
static double rate(int way, const char *a, const char *b) {
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        long macs = 0;
        double t0 = now(), t;
        do {
            if (way < 0) {
                peak(10000);
                macs += 10000L * ROWS * 32;
            } else {
                v16 c[ROWS];
                size_t esize = way == DWORD_WAY ? 4 : 2;
                for (int i = 0; i < 100; i++)
                    for (int k = 0; k < K; k += CHUNK)
                        chunk(way, c, a + k * esize, K * esize, b + (size_t)k * 64);
                macs += 100L * ROWS * 32 * K;
            }
            t = now();
        } while (t - t0 < 0.2);
        double g = macs / (t - t0) / 1e9;
        best = g > best ? g : best;
    }
    return best;
}

int main(void) {
    if (!bn_cpu_features_get()->avx512_fp16) {
        printf("f16_broadcast: this CPU has no avx512_fp16\n");
        return 77;
    }
    /* V: ones in binary16 (each 4-byte element also reads as two of them);
     * U: small values, so that nothing overflows however long it runs. */
    uint32_t *a = aligned_alloc(64, (size_t)ROWS * K * 4);
    uint16_t *b = aligned_alloc(64, (size_t)K * 64);
    if (!a || !b)
        return 1;
    for (size_t i = 0; i < (size_t)ROWS * K; i++)
        a[i] = 0x3c003c00u;
    for (size_t i = 0; i < (size_t)K * 32; i++)
        b[i] = 0x0400; /* 2^-14 */
    double p = rate(-1, NULL, NULL);
    printf("RESULT bench=f16_peak gmacs=%.1f\n", p);
    static const char *const names[] = {"dword", "embedded", "word"};
    for (int way = DWORD_WAY; way <= WORD_WAY; way++) {
        double g = rate(way, (const char *)a, (const char *)b);
        printf("RESULT bench=f16_broadcast way=%s v_bytes=%d gmacs=%.1f of_peak=%.2f\n", names[way],
               way == DWORD_WAY ? 4 : 2, g, g / p);
    }
    free(a);
    free(b);
    return 0;
}

#else
int main(void) {
    printf("f16_broadcast: needs GCC on x86-64\n");
    return 77;
}
#endif
