/*
 * vec_kernels.c: the distance kernels of the vector SQL functions and of
 * vec_knn (declared in vec_internal.h).
 *
 * Owns: dot products, squared L2, L1, cosine, each of two float vectors
 * summed in double. Every SQL function and vec_knn call these, so that the
 * scalar SQL form and vec_knn give the same distances to the last bit.
 */
#include "vec_internal.h"

#include <math.h>

/* ---------------------------------------------------------------------------
 * Kernels: float inputs, double accumulation, four independent sums so the
 * loop is not one long dependency chain. Products of two floats are exact in
 * double, so only the order of the additions differs from a plain loop.
 * ------------------------------------------------------------------------- */

double bn_vec_dot(const float *a, const float *b, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)a[i] * b[i];
        s1 += (double)a[i + 1] * b[i + 1];
        s2 += (double)a[i + 2] * b[i + 2];
        s3 += (double)a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += (double)a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

double bn_vec_l2sq(const float *a, const float *b, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        double d0 = (double)a[i] - b[i], d1 = (double)a[i + 1] - b[i + 1];
        double d2 = (double)a[i + 2] - b[i + 2], d3 = (double)a[i + 3] - b[i + 3];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < n; i++) {
        double d = (double)a[i] - b[i];
        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
}

double bn_vec_l1(const float *a, const float *b, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += fabs((double)a[i] - b[i]);
        s1 += fabs((double)a[i + 1] - b[i + 1]);
        s2 += fabs((double)a[i + 2] - b[i + 2]);
        s3 += fabs((double)a[i + 3] - b[i + 3]);
    }
    for (; i < n; i++)
        s0 += fabs((double)a[i] - b[i]);
    return (s0 + s1) + (s2 + s3);
}

/* dot(a, b) and |b|^2 in one pass, for cosine against a fixed query. Four
 * lanes of each, as above (the compiler turns them into vector registers). */
void bn_vec_dot_norm(const float *a, const float *b, int64_t n, double *dot, double *nb) {
    double d[4] = {0, 0, 0, 0}, q[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) {
            double x = a[i + j], y = b[i + j];
            d[j] += x * y;
            q[j] += y * y;
        }
    for (; i < n; i++) {
        double x = a[i], y = b[i];
        d[0] += x * y;
        q[0] += y * y;
    }
    *dot = (d[0] + d[1]) + (d[2] + d[3]);
    *nb = (q[0] + q[1]) + (q[2] + q[3]);
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
    double d[4] = {0, 0, 0, 0}, p[4] = {0, 0, 0, 0}, q[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) {
            double x = a[i + j], y = b[i + j];
            d[j] += x * y;
            p[j] += x * x;
            q[j] += y * y;
        }
    for (; i < n; i++) {
        double x = a[i], y = b[i];
        d[0] += x * y;
        p[0] += x * x;
        q[0] += y * y;
    }
    return bn_vec_cosine_from((d[0] + d[1]) + (d[2] + d[3]), (p[0] + p[1]) + (p[2] + p[3]),
                              (q[0] + q[1]) + (q[2] + q[3]));
}
