/*
 * check.h: the test suite's whole framework. A test program is a main() that
 * calls CHECK*() and returns check_done(). Failures print file:line and the
 * values; the program exits non-zero if any check failed.
 *
 * BN_SHARED (set by tests/meson.build) points at ../shared: real photos,
 * weights and reference outputs. BN_BUILD_DIR is the build root, for tests
 * that run the installed programs.
 */
#ifndef BN_CHECK_H
#define BN_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures, check_count;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        CHECK_MSG(check_a_ == check_b_, "%s = %lld, %s = %lld", #a, check_a_, #b, check_b_);       \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        CHECK_MSG(check_a_ &&check_b_ &&strcmp(check_a_, check_b_) == 0,                           \
                  "%s = \"%s\", %s = \"%s\"", #a, check_a_ ? check_a_ : "(null)", #b,              \
                  check_b_ ? check_b_ : "(null)");                                                 \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double check_a_ = (double)(a), check_b_ = (double)(b);                                     \
        CHECK_MSG(fabs(check_a_ - check_b_) <= (tol), "%s = %.9g, %s = %.9g (tol %g)", #a,         \
                  check_a_, #b, check_b_, (double)(tol));                                          \
    } while (0)

/* Path under ../shared; aborts the test (as skipped, exit 77) only when the
 * shared folder is missing altogether. */
static inline const char *shared_path(const char *rel) {
    static char buf[8][4096];
    static int slot;
    const char *root = getenv("BN_SHARED");
    if (!root || !*root) {
        fprintf(stderr, "BN_SHARED is not set\n");
        exit(77);
    }
    char *out = buf[slot++ & 7];
    int n = snprintf(out, 4096, "%s/%s", root, rel);
    if (n < 0 || n >= 4096) {
        fprintf(stderr, "path too long under BN_SHARED\n");
        exit(1);
    }
    return out;
}

static inline int check_done(void) {
    printf("%d checks, %d failed\n", check_count, check_failures);
    return check_failures ? 1 : 0;
}

#endif
