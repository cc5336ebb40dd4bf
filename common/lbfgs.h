/*
 * lbfgs.h: L-BFGS as a state machine that never evaluates anything itself.
 *
 * The method is train.c's (10 pairs, two-loop recursion, strong Wolfe line
 * search with safeguarded cubic interpolation, scipy's ftol test); the caller
 * evaluates the objective. That is what lets a sweep advance many problems in
 * lockstep (common/sweep.c): each round, every unfinished problem asks for
 * one point, and one pass over the data evaluates them all.
 *
 *   bn_lbfgs s;
 *   bn_lbfgs_init(&s, P, theta0, scale, tol, max_iter, 0, err);
 *   while (s.state != BN_LBFGS_DONE) {
 *       f = F(s.xt) and its gradient into s.gt;
 *       bn_lbfgs_tell(&s, f);
 *   }
 *   s.theta, s.f, s.g: the result; s.iterations, s.converged.
 *
 * Convergence: |g| * scale <= tol, |g| the max norm (scikit-learn's test) or,
 * with norm2, the Euclidean norm (a rotation-invariant bound on the max norm
 * in any orthonormal basis); or the objective no longer decreases:
 * (f_old - f) * scale <= 64 eps max(|f_old| scale, |f| scale, 1).
 * With shift set (P - 1 values, max norm only), the max norm is taken of
 * (g_i + shift_i g_last, g_last): the gradient in coordinates where the last
 * parameter (an intercept) is b - shift . w, as scikit-learn's on raw rows
 * when the optimiser works on centred ones (sweep.c).
 */
#ifndef BN_LBFGS_H
#define BN_LBFGS_H

#include "error.h"
#include <stddef.h>

/* Pairs kept by default (scipy's and train.c's choice), and at most. */
#define BN_LBFGS_M 10
#define BN_LBFGS_M_MAX 64

enum {
    BN_LBFGS_START,
    BN_LBFGS_BRACKET,
    BN_LBFGS_ZOOM,
    BN_LBFGS_FINAL,
    BN_LBFGS_GRAD,
    BN_LBFGS_DONE
};

#define BN_LBFGS_NEED_GRAD 2

typedef struct {
    size_t P;
    int state;
    double *theta, *g; /* the current iterate, its gradient; f its value */
    double f;
    double *xt, *gt; /* the point to evaluate next, and where its gradient goes */
    int iterations, converged, max_iter, norm2;
    int ndir;     /* directions taken so far: the line search moves xt along dir */
    double alpha; /* xt = theta + alpha dir during a line search */
    double scale, tol;
    const double *shift; /* NULL, or see above; set after bn_lbfgs_init */
    /* private: memory, direction, line search */
    double *mem, *s, *y, *dir;
    double rho[BN_LBFGS_M_MAX], ah[BN_LBFGS_M_MAX];
    int m; /* pairs kept */
    int head, stored, ls_i;
    int have_gt;
    double f_acc;
    double f0, d0, a_prev, f_prev, d_prev, lo, f_lo, d_lo, hi, f_hi, d_hi;
} bn_lbfgs;

/* Starts at theta0 (P values, copied): xt = theta0 is the first point asked.
 * m: pairs kept (0: BN_LBFGS_M; at most BN_LBFGS_M_MAX). */
int bn_lbfgs_init(bn_lbfgs *s, size_t P, const double *theta0, double scale, double tol,
                  int max_iter, int norm2, int m, bn_error *err);
/* f = F(xt), with its gradient already in gt. Returns 1 when the next point
 * is in xt, 0 when done (state BN_LBFGS_DONE). */
int bn_lbfgs_tell(bn_lbfgs *s, double f);
/* The line search without gradients: f = F(xt) and da = grad F(xt) . dir
 * (cheap when the margins along dir are known). Returns 1 (next point in xt),
 * 0 (done) or BN_LBFGS_NEED_GRAD: xt is accepted, put its gradient in gt and
 * call bn_lbfgs_tell_grad, which returns 1 or 0 as bn_lbfgs_tell. The first
 * point (state BN_LBFGS_START) needs bn_lbfgs_tell. */
int bn_lbfgs_tell_line(bn_lbfgs *s, double f, double da);
int bn_lbfgs_tell_grad(bn_lbfgs *s);
/* |g| * scale in the norm of the convergence test. */
double bn_lbfgs_gnorm(const bn_lbfgs *s, const double *g);
void bn_lbfgs_free(bn_lbfgs *s);

#endif
