/*
 * toom_cook.c: F(m, r)'s matrices from their points (toom_cook.h). A^T and G
 * follow from the points directly; B^T is then the one matrix that makes
 * the triple a correlation, solved in long double for each of its columns.
 */
#include "toom_cook.h"

#include <math.h>
#include <string.h>

int toom_cook_make(toom_cook *tc, int m, int r, const double *pts) {
    int n = m + r - 1;
    if (m < 1 || r < 1 || n > TC_MAX_N || n < 2)
        return -1;
    memset(tc, 0, sizeof *tc);
    tc->m = m;
    tc->r = r;
    tc->n = n;
    for (int j = 0; j < n - 1; j++) {
        long double f = 1;
        for (int l = 0; l < n - 1; l++)
            if (l != j)
                f *= (long double)pts[j] - pts[l];
        if (f == 0)
            return -1;
        for (int k = 0; k < r; k++)
            tc->g[j][k] = (double)(powl(pts[j], k) / f);
        for (int i = 0; i < m; i++)
            tc->at[i][j] = (double)powl(pts[j], i);
    }
    tc->g[n - 1][r - 1] = 1; /* infinity: the leading coefficients */
    tc->at[m - 1][n - 1] = 1;
    /* Column l of B^T: sum_j (A^T[i][j] G[j][k]) B^T[j][l] = [l == i + k]
     * for the m r pairs (i, k): least squares through the normal equations,
     * exact when the triple exists. */
    for (int l = 0; l < n; l++) {
        long double a[TC_MAX_N][TC_MAX_N + 1] = {{0}};
        for (int p = 0; p < n; p++)
            for (int q = 0; q <= n; q++)
                for (int i = 0; i < m; i++)
                    for (int k = 0; k < r; k++) {
                        long double x = (long double)tc->at[i][p] * tc->g[p][k];
                        long double y = q < n ? (long double)tc->at[i][q] * tc->g[q][k]
                                              : (long double)(l == i + k);
                        a[p][q] += x * y;
                    }
        for (int c = 0; c < n; c++) {
            int piv = c;
            for (int p = c + 1; p < n; p++)
                if (fabsl(a[p][c]) > fabsl(a[piv][c]))
                    piv = p;
            if (a[piv][c] == 0)
                return -1;
            for (int q = 0; q <= n; q++) {
                long double t = a[c][q];
                a[c][q] = a[piv][q];
                a[piv][q] = t;
            }
            for (int p = 0; p < n; p++)
                if (p != c) {
                    long double f = a[p][c] / a[c][c];
                    for (int q = c; q <= n; q++)
                        a[p][q] -= f * a[c][q];
                }
        }
        for (int j = 0; j < n; j++) {
            double v = (double)(a[j][n] / a[j][j]);
            /* the exact coefficients are short binary fractions for the
             * usual points: drop the solve's last-bit noise around zero */
            tc->bt[j][l] = fabs(v) < 1e-12 ? 0 : v;
        }
    }
    return toom_cook_residual(tc) < 1e-9 ? 0 : -1;
}

double toom_cook_residual(const toom_cook *tc) {
    double worst = 0;
    for (int i = 0; i < tc->m; i++)
        for (int k = 0; k < tc->r; k++)
            for (int l = 0; l < tc->n; l++) {
                long double s = -(long double)(l == i + k);
                for (int j = 0; j < tc->n; j++)
                    s += (long double)tc->at[i][j] * tc->g[j][k] * tc->bt[j][l];
                if (fabsl(s) > worst)
                    worst = (double)fabsl(s);
            }
    return worst;
}

const double *toom_cook_points(int m) {
    static const double p2[] = {0, 1, -1};
    static const double p4[] = {0, 1, -1, 2, -2};
    static const double p6[] = {0, 1, -1, 2, -2, 0.5, -0.5};
    static const double p7[] = {0, 1, -1, 2, -2, 0.5, -0.5, 1.5};
    static const double p8[] = {0, 1, -1, 2, -2, 0.5, -0.5, 1.5, -1.5};
    switch (m) {
    case 2: return p2;
    case 4: return p4;
    case 6: return p6;
    case 7: return p7;
    case 8: return p8;
    default: return 0;
    }
}
