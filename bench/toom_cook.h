/*
 * toom_cook.h: the matrices of Winograd's F(m, r) for any m and points, so
 * that a tile size the engine does not have can be judged (accuracy by
 * bench/precision_model --tile, speed by counting positions) before anyone
 * writes its transforms by hand (issue 16).
 *
 * y = A^T [(G g) . (B^T d)] is the 1-D correlation y_i = sum_k g_k d_(i+k),
 * i < m, k < r, with n = m + r - 1 transform positions: the n - 1 finite
 * points given, then the point at infinity. The 2-D transforms are these
 * applied along both axes. G's scaling is the engine's (row j of G is
 * a_j^k / prod_(l != j) (a_j - a_l)), so that for m = 6, r = 3 and the
 * engine's points the three matrices are bn_conv_winograd_matrices' own
 * (tests/test_toom_cook.c checks both).
 */
#ifndef BN_BENCH_TOOM_COOK_H
#define BN_BENCH_TOOM_COOK_H

#define TC_MAX_N 12

typedef struct {
    int m, r, n;
    double g[TC_MAX_N][TC_MAX_N];  /* G: n x r */
    double bt[TC_MAX_N][TC_MAX_N]; /* B^T: n x n */
    double at[TC_MAX_N][TC_MAX_N]; /* A^T: m x n */
} toom_cook;

/* The matrices of F(m, r) on the n - 1 finite points pts (distinct). 0, or
 * -1 when the points do not define an algorithm (n out of range, two equal
 * points) or the solution is not exact to 1e-9. */
int toom_cook_make(toom_cook *tc, int m, int r, const double *pts);

/* The largest |sum_j A^T[i][j] G[j][k] B^T[j][l] - [l == i + k]| over all
 * i, k, l: 0 up to rounding for a correct triple. */
double toom_cook_residual(const toom_cook *tc);

/* The points bench/precision_model uses for tile m (2 to 8, r = 3): the
 * engine's 0, +-1, +-2, +-1/2 for m = 6, the smaller sets for m = 2 and 4,
 * and past them +-3/2 for m = 8 (of +-3/2, +-3 and +-1/4, the pair with the
 * lowest error, docs/PERFORMANCE.md) or 3/2 for m = 7 (3 gave the same
 * error within 5%). NULL for others. */
const double *toom_cook_points(int m);

#endif
