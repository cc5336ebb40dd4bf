/*
 * lbfgs.c: reverse-communication L-BFGS (lbfgs.h).
 *
 * Nocedal & Wright, algorithm 7.4 (two-loop recursion) and algorithms 3.5 and
 * 3.6 (strong Wolfe line search, c1 = 1e-4, c2 = 0.9), each evaluation
 * handed back to the caller: the line search's loops are the states BRACKET
 * (growing the step by 2.5 until it brackets an acceptable one) and ZOOM
 * (safeguarded cubic interpolation inside the bracket); FINAL re-evaluates the
 * best sufficient-decrease point when no strong Wolfe point was found (rounding
 * limits near the optimum). A failed line search restarts once from steepest
 * descent, then stops: the rounding floor.
 */
#include "lbfgs.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LBFGS_MAXLS 40

/* In eight partial sums added in a fixed order: vectorisable and the same
 * from run to run. One running sum waited on each add's latency: the
 * two-loop recursion (4 m dot products and axpys of P values per
 * iteration) was 13% of a 10-value sweep on 2,000 x 1,024. */
static double lb_dot(const double *a, const double *b, size_t n) {
    double s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += a[i + k] * b[i + k];
    for (; i < n; i++)
        s[0] += a[i] * b[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

double bn_lbfgs_gnorm(const bn_lbfgs *s, const double *g) {
    if (s->norm2)
        return sqrt(lb_dot(g, g, s->P)) * s->scale;
    double m = 0;
    if (s->shift) {
        double last = g[s->P - 1];
        for (size_t i = 0; i + 1 < s->P; i++)
            m = fmax(m, fabs(g[i] + s->shift[i] * last));
        return fmax(m, fabs(last)) * s->scale;
    }
    for (size_t i = 0; i < s->P; i++)
        m = fmax(m, fabs(g[i]));
    return m * s->scale;
}

/* Minimiser of the cubic through (a, fa, da) and (b, fb, db), or NaN. */
static double lb_cubic_min(double a, double fa, double da, double b, double fb, double db) {
    double d1 = da + db - 3 * (fa - fb) / (a - b);
    double disc = d1 * d1 - da * db;
    if (disc < 0)
        return NAN;
    double d2 = copysign(sqrt(disc), b - a);
    double den = db - da + 2 * d2;
    if (den == 0)
        return NAN;
    return b - (b - a) * (db + d2 - d1) / den;
}

static int lb_trial(bn_lbfgs *s, double alpha) {
    s->alpha = alpha;
    for (size_t i = 0; i < s->P; i++)
        s->xt[i] = s->theta[i] + alpha * s->dir[i];
    return 1;
}

static int lb_done(bn_lbfgs *s, int converged) {
    s->converged = converged;
    s->state = BN_LBFGS_DONE;
    return 0;
}

/* Top of an iteration: the convergence test, then a direction and the first trial. */
static int lb_iterate(bn_lbfgs *s) {
    size_t P = s->P;
    if (bn_lbfgs_gnorm(s, s->g) <= s->tol)
        return lb_done(s, 1);
    if (s->iterations >= s->max_iter)
        return lb_done(s, 0);
    double *dir = s->dir;
    for (size_t i = 0; i < P; i++)
        dir[i] = -s->g[i];
    for (int m = 0; m < s->stored; m++) {
        int idx = (s->head - 1 - m + s->m) % s->m;
        s->ah[idx] = s->rho[idx] * lb_dot(s->s + idx * P, dir, P);
        for (size_t i = 0; i < P; i++)
            dir[i] -= s->ah[idx] * s->y[idx * P + i];
    }
    if (s->stored > 0) {
        int last = (s->head - 1 + s->m) % s->m;
        double gamma = lb_dot(s->s + last * P, s->y + last * P, P) /
                       lb_dot(s->y + last * P, s->y + last * P, P);
        for (size_t i = 0; i < P; i++)
            dir[i] *= gamma;
    }
    for (int m = s->stored - 1; m >= 0; m--) {
        int idx = (s->head - 1 - m + s->m) % s->m;
        double beta = s->rho[idx] * lb_dot(s->y + idx * P, dir, P);
        for (size_t i = 0; i < P; i++)
            dir[i] += (s->ah[idx] - beta) * s->s[idx * P + i];
    }
    double d0 = lb_dot(s->g, dir, P);
    if (!(d0 < 0)) { /* not a descent direction: restart from steepest descent */
        for (size_t i = 0; i < P; i++)
            dir[i] = -s->g[i];
        d0 = lb_dot(s->g, dir, P);
        s->stored = 0;
    }
    double step = s->stored == 0 ? fmin(1.0, 1.0 / sqrt(lb_dot(s->g, s->g, P))) : 1.0;
    s->f0 = s->f;
    s->d0 = d0;
    s->a_prev = 0, s->f_prev = s->f, s->d_prev = d0;
    s->ls_i = 0;
    s->ndir++;
    s->state = BN_LBFGS_BRACKET;
    return lb_trial(s, step);
}

/* The line search found nothing: restart from steepest descent once. */
static int lb_ls_fail(bn_lbfgs *s) {
    if (s->stored == 0)
        return lb_done(s, 0);
    s->stored = 0;
    return lb_iterate(s);
}

/* xt accepted with value fnew: update the pairs, move, test ftol. Without
 * the gradient at xt yet (bn_lbfgs_tell_line), ask for it first. */
static int lb_accept(bn_lbfgs *s, double fnew) {
    size_t P = s->P;
    if (!s->have_gt) {
        s->f_acc = fnew;
        s->state = BN_LBFGS_GRAD;
        return BN_LBFGS_NEED_GRAD;
    }
    s->iterations++;
    double *sn = s->s + (size_t)s->head * P, *yn = s->y + (size_t)s->head * P;
    for (size_t i = 0; i < P; i++) {
        sn[i] = s->xt[i] - s->theta[i];
        yn[i] = s->gt[i] - s->g[i];
    }
    memcpy(s->theta, s->xt, P * sizeof *s->theta);
    memcpy(s->g, s->gt, P * sizeof *s->g);
    double sy = lb_dot(sn, yn, P);
    if (sy > 1e-12 * sqrt(lb_dot(sn, sn, P) * lb_dot(yn, yn, P))) {
        s->rho[s->head] = 1.0 / sy;
        s->head = (s->head + 1) % s->m;
        if (s->stored < s->m)
            s->stored++;
    }
    double fold = s->f;
    s->f = fnew;
    if ((fold - fnew) * s->scale <=
        64 * DBL_EPSILON * fmax(fmax(fabs(fold), fabs(fnew)) * s->scale, 1.0))
        return lb_done(s, 1); /* as scipy: the objective no longer decreases measurably */
    return lb_iterate(s);
}

static int lb_zoom_trial(bn_lbfgs *s) {
    double width = s->hi - s->lo, a = NAN;
    if (isfinite(s->f_hi))
        a = lb_cubic_min(s->lo, s->f_lo, s->d_lo, s->hi, s->f_hi, s->d_hi);
    double lo_b = fmin(s->lo, s->hi) + 0.1 * fabs(width);
    double hi_b = fmax(s->lo, s->hi) - 0.1 * fabs(width);
    if (!isfinite(a) || a < lo_b || a > hi_b)
        a = s->lo + 0.5 * width;
    s->state = BN_LBFGS_ZOOM;
    return lb_trial(s, a);
}

static int lb_tell(bn_lbfgs *s, double fa, double da);

static int lb_zoom_start(bn_lbfgs *s) {
    s->ls_i = 0;
    return lb_zoom_trial(s);
}

int bn_lbfgs_tell(bn_lbfgs *s, double fa) {
    s->have_gt = 1;
    if (s->state == BN_LBFGS_START) {
        s->f = fa;
        memcpy(s->g, s->gt, s->P * sizeof *s->g);
        return lb_iterate(s);
    }
    return lb_tell(s, fa, lb_dot(s->gt, s->dir, s->P));
}

int bn_lbfgs_tell_line(bn_lbfgs *s, double fa, double da) {
    s->have_gt = 0;
    return lb_tell(s, fa, da);
}

int bn_lbfgs_tell_grad(bn_lbfgs *s) {
    s->have_gt = 1;
    return lb_accept(s, s->f_acc);
}

static int lb_tell(bn_lbfgs *s, double fa, double da) {
    const double c1 = 1e-4, c2 = 0.9;
    double a = s->alpha;
    switch (s->state) {
    case BN_LBFGS_BRACKET:
        if (!isfinite(fa) || fa > s->f0 + c1 * a * s->d0 || (s->ls_i > 0 && fa >= s->f_prev)) {
            s->lo = s->a_prev, s->f_lo = s->f_prev, s->d_lo = s->d_prev;
            s->hi = a, s->f_hi = fa, s->d_hi = da;
            return lb_zoom_start(s);
        }
        if (fabs(da) <= -c2 * s->d0)
            return lb_accept(s, fa);
        if (da >= 0) {
            s->lo = a, s->f_lo = fa, s->d_lo = da;
            s->hi = s->a_prev, s->f_hi = s->f_prev, s->d_hi = s->d_prev;
            return lb_zoom_start(s);
        }
        s->a_prev = a, s->f_prev = fa, s->d_prev = da;
        if (++s->ls_i >= LBFGS_MAXLS)
            return lb_ls_fail(s);
        return lb_trial(s, a * 2.5);
    case BN_LBFGS_ZOOM:
        if (!isfinite(fa) || fa > s->f0 + c1 * a * s->d0 || fa >= s->f_lo) {
            s->hi = a, s->f_hi = fa, s->d_hi = da;
        } else {
            if (fabs(da) <= -c2 * s->d0)
                return lb_accept(s, fa);
            if (da * (s->hi - s->lo) >= 0)
                s->hi = s->lo, s->f_hi = s->f_lo, s->d_hi = s->d_lo;
            s->lo = a, s->f_lo = fa, s->d_lo = da;
        }
        if (++s->ls_i < LBFGS_MAXLS && !(fabs(s->hi - s->lo) <= 1e-16 * fmax(fabs(s->lo), 1e-300)))
            return lb_zoom_trial(s);
        /* No strong Wolfe point: accept the best sufficient-decrease point lo. */
        if (s->lo > 0 && s->f_lo < s->f0) {
            s->state = BN_LBFGS_FINAL;
            return lb_trial(s, s->lo);
        }
        return lb_ls_fail(s);
    case BN_LBFGS_FINAL: return lb_accept(s, fa);
    default: return 0;
    }
}

int bn_lbfgs_init(bn_lbfgs *s, size_t P, const double *theta0, double scale, double tol,
                  int max_iter, int norm2, int m, bn_error *err) {
    memset(s, 0, sizeof *s);
    s->P = P;
    s->m = m <= 0 ? BN_LBFGS_M : m > BN_LBFGS_M_MAX ? BN_LBFGS_M_MAX : m;
    s->mem = malloc((2 * (size_t)s->m + 5) * P * sizeof *s->mem);
    if (!s->mem)
        return bn_fail(err, BN_ENOMEM, "train: out of memory for L-BFGS (%zu parameters)", P);
    s->s = s->mem;
    s->y = s->s + s->m * P;
    s->theta = s->y + s->m * P;
    s->g = s->theta + P;
    s->dir = s->g + P;
    s->xt = s->dir + P;
    s->gt = s->xt + P;
    memcpy(s->theta, theta0, P * sizeof *theta0);
    memcpy(s->xt, theta0, P * sizeof *theta0);
    memset(s->dir, 0, P * sizeof *s->dir);
    s->scale = scale;
    s->tol = tol;
    s->max_iter = max_iter;
    s->norm2 = norm2;
    s->state = BN_LBFGS_START;
    return BN_OK;
}

void bn_lbfgs_free(bn_lbfgs *s) {
    free(s->mem);
    s->mem = NULL;
}
