/*
 * test_toom_cook.c: bench/toom_cook.c, the matrices of F(m, 3) that
 * bench/precision_model uses to judge tile sizes the engine does not have.
 *
 * For every tile it offers (2, 4, 6, 7, 8): the triple is exact (residual at
 * rounding), and a 2-D tile through it in double equals the convolution's
 * definition on random data. For m = 6 and the engine's points it is the
 * engine's own triple (bn_conv_winograd_matrices): A^T equal, and each
 * product G[j][k] B^T[j][l] equal (a row pair's sign is a free choice, and
 * the engine takes +1 for the point 0). Points that define no algorithm are
 * refused, and a one-entry change of B^T shows in the residual.
 */
#include "../bench/toom_cook.h"
#include "check.h"
#include "conv.h"
#include "support.h"

/* A 2-D tile of F(m x m, 3x3) through tc in double against the definition:
 * the largest error relative to the largest |output|. */
static double tile_error(const toom_cook *tc) {
    const int m = tc->m, n = tc->n;
    double d[TC_MAX_N][TC_MAX_N], g[3][3], v[TC_MAX_N][TC_MAX_N], u[TC_MAX_N][TC_MAX_N];
    double t[TC_MAX_N][TC_MAX_N], worst = 0, scale = 0;
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++)
            d[a][b] = support_rnd();
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            g[a][b] = support_rnd();
    for (int i = 0; i < n; i++) /* V = B^T d B, U = G g G^T */
        for (int j = 0; j < n; j++) {
            v[i][j] = u[i][j] = 0;
            for (int a = 0; a < n; a++)
                for (int b = 0; b < n; b++)
                    v[i][j] += tc->bt[i][a] * d[a][b] * tc->bt[j][b];
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++)
                    u[i][j] += tc->g[i][a] * g[a][b] * tc->g[j][b];
        }
    for (int i = 0; i < m; i++) /* t = A^T (U . V) */
        for (int j = 0; j < n; j++) {
            t[i][j] = 0;
            for (int a = 0; a < n; a++)
                t[i][j] += tc->at[i][a] * u[a][j] * v[a][j];
        }
    for (int y = 0; y < m; y++) /* Y = t A, against sum g[a][b] d[y + a][x + b] */
        for (int x = 0; x < m; x++) {
            double got = 0, want = 0;
            for (int b = 0; b < n; b++)
                got += t[y][b] * tc->at[x][b];
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++)
                    want += g[a][b] * d[y + a][x + b];
            worst = fmax(worst, fabs(got - want));
            scale = fmax(scale, fabs(want));
        }
    return worst / scale;
}

static void test_tiles(void) {
    int tiles[] = {2, 4, 6, 7, 8};
    for (size_t i = 0; i < sizeof tiles / sizeof *tiles; i++) {
        int m = tiles[i];
        toom_cook tc;
        const double *pts = toom_cook_points(m);
        CHECK_MSG(pts != NULL, "tile %d has no points", m);
        if (!pts)
            continue;
        CHECK_INT(toom_cook_make(&tc, m, 3, pts), 0);
        CHECK_INT(tc.n, m + 2);
        double res = toom_cook_residual(&tc), err = 0;
        for (int rep = 0; rep < 20; rep++)
            err = fmax(err, tile_error(&tc));
        printf("F(%dx%d, 3x3): residual %.2e, 2-D tile error %.2e\n", m, m, res, err);
        CHECK_MSG(res < 1e-12, "F(%d, 3) residual %g", m, res);
        CHECK_MSG(err < 1e-11, "F(%dx%d, 3x3) tile error %g", m, m, err);
    }
    CHECK(toom_cook_points(5) == NULL);
    CHECK(toom_cook_points(9) == NULL);
}

static void test_engine_triple(void) {
    double G[8][3], BT[8][8], AT[6][8];
    bn_conv_winograd_matrices(G, BT, AT);
    toom_cook tc;
    CHECK_INT(toom_cook_make(&tc, 6, 3, toom_cook_points(6)), 0);
    double worst_at = 0, worst_gb = 0;
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 8; j++)
            worst_at = fmax(worst_at, fabs(tc.at[i][j] - AT[i][j]));
    for (int j = 0; j < 8; j++)
        for (int k = 0; k < 3; k++)
            for (int l = 0; l < 8; l++)
                worst_gb = fmax(worst_gb, fabs(tc.g[j][k] * tc.bt[j][l] - G[j][k] * BT[j][l]));
    printf("against the engine's F(6x6): A^T %.2e, G B^T %.2e\n", worst_at, worst_gb);
    CHECK_MSG(worst_at == 0, "A^T differs by %g", worst_at);
    CHECK_MSG(worst_gb < 1e-14, "G B^T differs by %g", worst_gb);
}

static void test_refused(void) {
    toom_cook tc;
    const double twice[] = {0, 1, -1, 2, 2}; /* a point twice */
    CHECK_INT(toom_cook_make(&tc, 4, 3, twice), -1);
    const double many[TC_MAX_N + 2] = {0};
    CHECK_INT(toom_cook_make(&tc, TC_MAX_N, 3, many), -1); /* n past TC_MAX_N */
    CHECK_INT(toom_cook_make(&tc, 0, 3, many), -1);
    /* the residual sees one wrong entry */
    CHECK_INT(toom_cook_make(&tc, 6, 3, toom_cook_points(6)), 0);
    tc.bt[3][4] += 1.0 / 64;
    CHECK_MSG(toom_cook_residual(&tc) > 1e-3, "residual %g", toom_cook_residual(&tc));
}

int main(void) {
    test_tiles();
    test_engine_triple();
    test_refused();
    return check_done();
}
