/*
 * plot.c: inline SVG figures (see plot.h).
 *
 * Geometry: every plot is W x H CSS pixels with fixed margins for the title,
 * tick labels and axis titles; data are mapped linearly (or by log10) into
 * the inner frame and clipped to it. Text sizes are 12-14 px, which prints at
 * about 9-10 pt when a figure is scaled to a column width.
 */
#include "plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PLOT_W 498
#define PLOT_H 360
#define M_LEFT 82
#define M_RIGHT 16
#define M_TOP 34
#define M_BOTTOM 50
#define FONT "font-family=\"DejaVu Sans,Helvetica,Arial,sans-serif\""
#define MAX_SERIES 48

/* Okabe & Ito (2008), "Color Universal Design": distinguishable with every
 * common colour-vision deficiency. Yellow (#F0E442) is left out: too pale on
 * white for thin lines. */
static const char *const palette[CL_PALETTE_SIZE] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                                     "#E69F00", "#56B4E9", "#000000"};
static const char *const dashes[4] = {"", "6,3", "2,3", "7,3,2,3"};

const char *cl_palette(int i) {
    return palette[((i % CL_PALETTE_SIZE) + CL_PALETTE_SIZE) % CL_PALETTE_SIZE];
}

typedef struct {
    int kind, colour, dash, marker, n;
    char *name;
    double *x, *y;
} plot_series;

typedef struct {
    char *label;
    double lo, hi;
    int log;
} plot_axis;

struct cl_plot {
    char *id, *title, *diagonal;
    plot_axis axis[2];
    int legend, nseries;
    plot_series s[MAX_SERIES];
};

void cl_html_text(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

static char *plot_strdup(const char *s) {
    return s ? strdup(s) : NULL;
}

cl_plot *cl_plot_new(const char *id, const char *title) {
    cl_plot *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->id = plot_strdup(id);
    p->title = plot_strdup(title);
    for (int a = 0; a < 2; a++)
        p->axis[a].lo = p->axis[a].hi = NAN;
    return p;
}

void cl_plot_free(cl_plot *p) {
    if (!p)
        return;
    for (int i = 0; i < p->nseries; i++) {
        free(p->s[i].name);
        free(p->s[i].x);
    }
    for (int a = 0; a < 2; a++)
        free(p->axis[a].label);
    free(p->id);
    free(p->title);
    free(p->diagonal);
    free(p);
}

void cl_plot_axis(cl_plot *p, int axis, const char *label, double lo, double hi, int log) {
    free(p->axis[axis].label);
    p->axis[axis].label = plot_strdup(label);
    p->axis[axis].lo = lo;
    p->axis[axis].hi = hi;
    p->axis[axis].log = log;
}

void cl_plot_legend(cl_plot *p, int where) {
    p->legend = where;
}

void cl_plot_diagonal(cl_plot *p, const char *name) {
    free(p->diagonal);
    p->diagonal = plot_strdup(name ? name : "");
}

int cl_plot_series(cl_plot *p, int kind, const char *name, int colour, int dash, int marker,
                   const double *x, const double *y, int n) {
    if (p->nseries == MAX_SERIES || n < 0)
        return -1;
    plot_series *s = &p->s[p->nseries];
    int nx = kind == CL_HIST ? n + 1 : n;
    s->x = malloc(((size_t)nx + (size_t)n + 1) * sizeof *s->x);
    if (!s->x)
        return -1;
    s->y = s->x + nx;
    memcpy(s->x, x, (size_t)nx * sizeof *x);
    memcpy(s->y, y, (size_t)n * sizeof *y);
    s->name = plot_strdup(name ? name : "");
    s->kind = kind, s->colour = colour, s->dash = dash & 3, s->marker = marker, s->n = n;
    p->nseries++;
    return 0;
}

/* ---- axes -------------------------------------------------------------------------- */

/* The round step (1, 2, 5 x 10^k) giving about `target` intervals over span. */
static double plot_nice_step(double span, int target) {
    double raw = span / target, mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

/* Fill in a NAN end of the range from the data, widened to round ticks. */
static void plot_range(const cl_plot *p, int a, double *lo, double *hi) {
    const plot_axis *ax = &p->axis[a];
    double dlo = INFINITY, dhi = -INFINITY;
    for (int i = 0; i < p->nseries; i++) {
        const plot_series *s = &p->s[i];
        int n = a == 0 ? (s->kind == CL_HIST ? s->n + 1 : s->n) : s->n;
        const double *v = a == 0 ? s->x : s->y;
        for (int j = 0; j < n; j++)
            if (isfinite(v[j]) && (!ax->log || v[j] > 0)) {
                dlo = v[j] < dlo ? v[j] : dlo;
                dhi = v[j] > dhi ? v[j] : dhi;
            }
        if (a == 1 && s->kind == CL_HIST)
            dlo = dlo > 0 ? 0 : dlo; /* bars stand on zero */
    }
    if (!isfinite(dlo))
        dlo = ax->log ? 1 : 0, dhi = ax->log ? 10 : 1;
    *lo = isnan(ax->lo) ? dlo : ax->lo;
    *hi = isnan(ax->hi) ? dhi : ax->hi;
    if (ax->log) {
        double l = log10(*lo), h = log10(*hi);
        if (h - l < 1e-9)
            l -= 1, h += 1;
        /* a margin of a sixth of the span, so that end markers are not cut */
        double pad = (h - l) / 12;
        if (isnan(ax->lo))
            *lo = pow(10, l - pad);
        if (isnan(ax->hi))
            *hi = pow(10, h + pad);
        return;
    }
    if (*hi - *lo < 1e-12 * (fabs(*hi) + 1)) {
        *lo -= 0.5;
        *hi += 0.5;
    }
    /* 4% of the span as a margin (so that no point sits on the frame), then
     * out to the next round tick */
    double span = *hi - *lo;
    if (isnan(ax->lo) && *lo != 0)
        *lo -= 0.04 * span;
    if (isnan(ax->hi))
        *hi += 0.04 * span;
    double step = plot_nice_step(*hi - *lo, 5);
    if (isnan(ax->lo))
        *lo = floor(*lo / step + 1e-9) * step;
    if (isnan(ax->hi))
        *hi = ceil(*hi / step - 1e-9) * step;
}

typedef struct {
    double lo, hi;
    int log;
    double p0, p1; /* pixel positions of lo and hi */
} plot_map;

static double plot_px(const plot_map *m, double v) {
    double t = m->log ? (log10(v) - log10(m->lo)) / (log10(m->hi) - log10(m->lo))
                      : (v - m->lo) / (m->hi - m->lo);
    return m->p0 + t * (m->p1 - m->p0);
}

/* A tick label: round numbers printed as such ("0.25", "1000", "1e+06"). */
static void plot_tick_text(char *buf, size_t n, double v, double step) {
    if (fabs(v) < step * 1e-9)
        v = 0;
    int dec = 0;
    if (step < 1)
        dec = (int)ceil(-log10(step) - 1e-9);
    if (fabs(v) >= 1e6 || (v != 0 && fabs(v) < 1e-4))
        snprintf(buf, n, "%g", v);
    else
        snprintf(buf, n, "%.*f", dec, v);
}

static void plot_text(FILE *f, double x, double y, const char *anchor, int size, const char *extra,
                      const char *s) {
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\"%s%s>", x, y, anchor,
            size, extra ? " " : "", extra ? extra : "");
    cl_html_text(f, s);
    fputs("</text>\n", f);
}

/* Ticks, grid lines and labels of one axis. */
static void plot_axis_draw(FILE *f, const plot_map *m, int a, double x0, double x1, double y0,
                           double y1) {
    fprintf(f, "<g class=\"axis\" " FONT " fill=\"#000\">\n");
    if (m->log) {
        int e0 = (int)ceil(log10(m->lo) - 1e-9), e1 = (int)floor(log10(m->hi) + 1e-9);
        int every = (e1 - e0) > 8 ? 2 : 1;
        for (int e = e0; e <= e1; e++) {
            double v = pow(10, e), px = plot_px(m, v);
            if (a == 0)
                fprintf(f,
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>"
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n",
                        px, y0, px, y1, px, y0, px, y0 + 5);
            else
                fprintf(f,
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>"
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n",
                        x0, px, x1, px, x0 - 5, px, x0, px);
            if ((e - e0) % every)
                continue;
            /* 10 with a superscript exponent: 10^-3 reads better than 0.001 */
            if (a == 0)
                fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\">",
                        px, y0 + 20);
            else
                fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"12\">",
                        x0 - 8, px + 4);
            if (e == 0)
                fputs("1", f);
            else if (e == 1)
                fputs("10", f);
            else
                fprintf(f, "10<tspan dy=\"-6\" font-size=\"9\">%s%d</tspan>",
                        e < 0 ? "&#8722;" : "", abs(e));
            fputs("</text>\n", f);
            /* minor ticks at 2..9 x 10^e */
            for (int k = 2; k < 10; k++) {
                double mv = k * v;
                if (mv > m->hi)
                    break;
                double mp = plot_px(m, mv);
                if (a == 0)
                    fprintf(
                        f,
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>",
                        mp, y0, mp, y0 + 3);
                else
                    fprintf(
                        f,
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>",
                        x0 - 3, mp, x0, mp);
            }
            fputc('\n', f);
        }
        /* minor ticks below the first decade */
        for (int k = 9; k >= 2; k--) {
            double mv = k * pow(10, e0 - 1);
            if (mv < m->lo)
                break;
            double mp = plot_px(m, mv);
            if (a == 0)
                fprintf(f,
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>",
                        mp, y0, mp, y0 + 3);
            else
                fprintf(f,
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>",
                        x0 - 3, mp, x0, mp);
        }
    } else {
        double step = plot_nice_step(m->hi - m->lo, 5);
        for (double v = ceil(m->lo / step - 1e-9) * step; v <= m->hi + step * 1e-9; v += step) {
            double px = plot_px(m, v);
            char t[32];
            plot_tick_text(t, sizeof t, v, step);
            if (a == 0) {
                fprintf(f,
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>"
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n",
                        px, y0, px, y1, px, y0, px, y0 + 5);
                plot_text(f, px, y0 + 20, "middle", 12, NULL, t);
            } else {
                fprintf(f,
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>"
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n",
                        x0, px, x1, px, x0 - 5, px, x0, px);
                plot_text(f, x0 - 8, px + 4, "end", 12, NULL, t);
            }
        }
    }
    fputs("</g>\n", f);
}

/* One marker of size r at (x, y). */
static void plot_marker(FILE *f, int marker, double x, double y, double r, const char *colour) {
    switch (marker) {
    case CL_MARK_CIRCLE:
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>", x, y, r, colour);
        break;
    case CL_MARK_SQUARE:
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>",
                x - r * 0.9, y - r * 0.9, 1.8 * r, 1.8 * r, colour);
        break;
    case CL_MARK_TRIANGLE:
        fprintf(f, "<path d=\"M%.1f %.1fl%.1f %.1fh%.1fz\" fill=\"%s\"/>", x, y - 1.2 * r, 1.1 * r,
                2 * r, -2.2 * r, colour);
        break;
    case CL_MARK_DIAMOND:
        fprintf(f, "<path d=\"M%.1f %.1fl%.1f %.1fl%.1f %.1fl%.1f %.1fz\" fill=\"%s\"/>", x,
                y - 1.3 * r, 1.3 * r, 1.3 * r, -1.3 * r, 1.3 * r, -1.3 * r, -1.3 * r, colour);
        break;
    case CL_MARK_RING:
        fprintf(f,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"none\" stroke=\"%s\" "
                "stroke-width=\"1.5\"/>",
                x, y, r * 1.9, colour);
        break;
    default: break;
    }
}

static void plot_numbers(FILE *f, const char *attr, const double *v, int n) {
    fprintf(f, " %s=\"", attr);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%.7g", i ? " " : "", v[i]);
    fputc('"', f);
}

static void plot_series_draw(FILE *f, const plot_series *s, const plot_map *mx,
                             const plot_map *my) {
    const char *c =
        s->kind == CL_POINTS && s->marker == CL_MARK_RING ? "#000" : cl_palette(s->colour);
    fputs("<g class=\"series\" data-name=\"", f);
    cl_html_text(f, s->name);
    fputc('"', f);
    if (s->kind != CL_POINTS) {
        plot_numbers(f, "data-x", s->x, s->kind == CL_HIST ? s->n + 1 : s->n);
        plot_numbers(f, "data-y", s->y, s->n);
    } else {
        fprintf(f, " data-n=\"%d\"", s->n);
    }
    fputs(">\n", f);
    if (s->kind == CL_POINTS) {
        /* translucent fills show where points pile up */
        if (s->marker != CL_MARK_RING)
            fputs("<g fill-opacity=\"0.6\">", f);
        for (int i = 0; i < s->n; i++)
            if (isfinite(s->x[i]) && isfinite(s->y[i]))
                plot_marker(f, s->marker, plot_px(mx, s->x[i]), plot_px(my, s->y[i]), 2.6, c);
        if (s->marker != CL_MARK_RING)
            fputs("</g>", f);
        fputs("</g>\n", f);
        return;
    }
    fprintf(f,
            "<path fill=\"%s\" fill-opacity=\"0.22\" stroke=\"%s\" stroke-width=\"2\" "
            "stroke-linejoin=\"round\"%s%s%s d=\"",
            s->kind == CL_HIST ? c : "none", c, s->dash ? " stroke-dasharray=\"" : "",
            dashes[s->dash], s->dash ? "\"" : "");
    if (s->kind == CL_HIST) {
        double base = plot_px(my, my->log ? my->lo : (my->lo > 0 ? my->lo : 0));
        fprintf(f, "M%.1f %.1f", plot_px(mx, s->x[0]), base);
        for (int i = 0; i < s->n; i++)
            fprintf(f, "V%.1fH%.1f", plot_px(my, s->y[i]), plot_px(mx, s->x[i + 1]));
        fprintf(f, "V%.1fZ", base);
    } else {
        int first = 1;
        double prev_y = 0;
        for (int i = 0; i < s->n; i++) {
            if (!isfinite(s->x[i]) || !isfinite(s->y[i]) || (mx->log && s->x[i] <= 0) ||
                (my->log && s->y[i] <= 0)) {
                first = 1;
                continue;
            }
            double px = plot_px(mx, s->x[i]), py = plot_px(my, s->y[i]);
            if (first)
                fprintf(f, "M%.2f %.2f", px, py);
            else if (s->kind == CL_STEP) /* steps-post: hold y until the next x */
                fprintf(f, "H%.2fV%.2f", px, py);
            else
                fprintf(f, "L%.2f %.2f", px, py);
            (void)prev_y;
            prev_y = py;
            first = 0;
        }
    }
    fputs("\"/>\n", f);
    if (s->marker != CL_MARK_NONE)
        for (int i = 0; i < s->n; i++)
            if (isfinite(s->x[i]) && isfinite(s->y[i]))
                plot_marker(f, s->marker, plot_px(mx, s->x[i]), plot_px(my, s->y[i]), 3.6, c);
    fputs("</g>\n", f);
}

/* How many drawn points (and points along the segments) fall inside a box. */
static int plot_covered(const cl_plot *p, const plot_map *mx, const plot_map *my, double bx,
                        double by, double bw, double bh) {
    int n = 0;
    for (int i = 0; i < p->nseries; i++) {
        const plot_series *s = &p->s[i];
        int stride = s->n > 4000 ? s->n / 4000 : 1;
        for (int j = 0; j < s->n; j += stride) {
            if (!isfinite(s->x[j]) || !isfinite(s->y[j]) || (mx->log && s->x[j] <= 0) ||
                (my->log && s->y[j] <= 0))
                continue;
            double px = plot_px(mx, s->x[j]), py = plot_px(my, s->y[j]);
            int steps = s->kind == CL_POINTS || j + 1 >= s->n || !isfinite(s->x[j + 1]) ||
                                !isfinite(s->y[j + 1]) || (mx->log && s->x[j + 1] <= 0) ||
                                (my->log && s->y[j + 1] <= 0)
                            ? 1
                            : 8;
            double nx = steps > 1 ? plot_px(mx, s->x[j + 1]) : px;
            double ny = steps > 1 ? plot_px(my, s->y[j + 1]) : py;
            for (int t = 0; t < steps; t++) {
                double u = (double)t / steps;
                double qx = px + u * (nx - px), qy = s->kind == CL_STEP ? py : py + u * (ny - py);
                n += qx >= bx && qx <= bx + bw && qy >= by && qy <= by + bh;
            }
        }
    }
    return n;
}

static void plot_legend_draw(FILE *f, const cl_plot *p, const plot_map *mx, const plot_map *my,
                             double x0, double x1, double y0, double y1) {
    int n = 0, longest = 0;
    for (int i = 0; i < p->nseries; i++)
        if (p->s[i].name[0]) {
            n++;
            int len = (int)strlen(p->s[i].name);
            longest = len > longest ? len : longest;
        }
    if (p->diagonal && p->diagonal[0]) {
        n++;
        longest = (int)strlen(p->diagonal) > longest ? (int)strlen(p->diagonal) : longest;
    }
    if (n == 0 || p->legend == CL_LEGEND_NONE)
        return;
    double w = 36 + longest * 6.6, h = 8 + 17 * n;
    /* The requested corner, unless another one hides fewer data points. */
    double lx = 0, ly = 0;
    int best = -1;
    for (int t = 0; t < 4; t++) {
        int corner = t == 0 ? p->legend : t - (t <= p->legend);
        int left = corner == CL_LEGEND_UPPER_LEFT || corner == CL_LEGEND_LOWER_LEFT;
        int upper = corner == CL_LEGEND_UPPER_LEFT || corner == CL_LEGEND_UPPER_RIGHT;
        double cx = left ? x0 + 8 : x1 - 8 - w, cy = upper ? y1 + 8 : y0 - 8 - h;
        int covered = plot_covered(p, mx, my, cx - 4, cy - 4, w + 8, h + 8);
        if (best < 0 || covered < best)
            best = covered, lx = cx, ly = cy;
    }
    fprintf(f,
            "<g class=\"legend\" " FONT ">\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
            "height=\"%.1f\" fill=\"#fff\" fill-opacity=\"0.9\" stroke=\"#999\"/>\n",
            lx, ly, w, h);
    int row = 0;
    for (int i = 0; i <= p->nseries; i++) {
        const char *name;
        const char *c;
        int kind, dash, marker;
        if (i < p->nseries) {
            const plot_series *s = &p->s[i];
            name = s->name, kind = s->kind, dash = s->dash, marker = s->marker;
            c = kind == CL_POINTS && marker == CL_MARK_RING ? "#000" : cl_palette(s->colour);
        } else {
            if (!p->diagonal || !p->diagonal[0])
                break;
            name = p->diagonal, kind = CL_LINE, dash = 1, marker = CL_MARK_NONE, c = "#888";
        }
        if (!name[0])
            continue;
        double cy = ly + 12 + 17 * row++;
        if (kind == CL_POINTS)
            plot_marker(f, marker, lx + 16, cy, 3.2, c);
        else if (kind == CL_HIST)
            fprintf(f,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"20\" height=\"9\" fill=\"%s\" "
                    "fill-opacity=\"0.22\" stroke=\"%s\" stroke-width=\"1.5\"/>",
                    lx + 6, cy - 4.5, c, c);
        else {
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                    "stroke-width=\"2\"%s%s%s/>",
                    lx + 4, cy, lx + 28, cy, c, dash ? " stroke-dasharray=\"" : "", dashes[dash],
                    dash ? "\"" : "");
            if (marker != CL_MARK_NONE)
                plot_marker(f, marker, lx + 16, cy, 3.2, c);
        }
        plot_text(f, lx + 34, cy + 4, "start", 12, NULL, name);
    }
    fputs("</g>\n", f);
}

void cl_plot_write(const cl_plot *p, FILE *f) {
    double x0 = M_LEFT, x1 = PLOT_W - M_RIGHT, y0 = PLOT_H - M_BOTTOM, y1 = M_TOP;
    plot_map mx = {.log = p->axis[0].log, .p0 = x0, .p1 = x1};
    plot_map my = {.log = p->axis[1].log, .p0 = y0, .p1 = y1};
    plot_range(p, 0, &mx.lo, &mx.hi);
    plot_range(p, 1, &my.lo, &my.hi);
    fprintf(f,
            "<svg class=\"plot\" data-plot=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" "
            "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
            p->id ? p->id : "", PLOT_W, PLOT_H, PLOT_W, PLOT_H);
    cl_html_text(f, p->title ? p->title : p->id);
    fprintf(f, "\">\n<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", PLOT_W, PLOT_H);
    fprintf(f,
            "<clipPath id=\"clip-%s\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
            "height=\"%.1f\"/></clipPath>\n",
            p->id ? p->id : "", x0 - 4, y1 - 4, x1 - x0 + 8, y0 - y1 + 8);
    plot_axis_draw(f, &mx, 0, x0, x1, y0, y1);
    plot_axis_draw(f, &my, 1, x0, x1, y0, y1);
    fprintf(f, "<g clip-path=\"url(#clip-%s)\">\n", p->id ? p->id : "");
    if (p->diagonal) {
        double lo = fmax(mx.lo, my.lo), hi = fmin(mx.hi, my.hi);
        fprintf(f,
                "<line class=\"reference\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"#888\" stroke-width=\"1.2\" stroke-dasharray=\"6,3\"/>\n",
                plot_px(&mx, lo), plot_px(&my, lo), plot_px(&mx, hi), plot_px(&my, hi));
    }
    for (int i = 0; i < p->nseries; i++)
        plot_series_draw(f, &p->s[i], &mx, &my);
    fputs("</g>\n", f);
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
            "stroke=\"#000\"/>\n",
            x0, y1, x1 - x0, y0 - y1);
    fputs("<g " FONT " fill=\"#000\">\n", f);
    if (p->title)
        plot_text(f, PLOT_W / 2.0, 20, "middle", 14, "font-weight=\"bold\"", p->title);
    if (p->axis[0].label)
        plot_text(f, (x0 + x1) / 2, PLOT_H - 10, "middle", 13, NULL, p->axis[0].label);
    if (p->axis[1].label) {
        char tr[80];
        snprintf(tr, sizeof tr, "transform=\"rotate(-90 14 %.1f)\"", (y0 + y1) / 2);
        plot_text(f, 14, (y0 + y1) / 2, "middle", 13, tr, p->axis[1].label);
    }
    fputs("</g>\n", f);
    plot_legend_draw(f, p, &mx, &my, x0, x1, y0, y1);
    fputs("</svg>\n", f);
}

/* Sequential blue ramp (ColorBrewer Blues, end points), by t in [0, 1]:
 * one hue, so order reads without colour vision and in grey print. */
static void plot_ramp(double t, char out[8]) {
    const double a[3] = {247, 251, 255}, b[3] = {8, 48, 107};
    int c[3];
    for (int i = 0; i < 3; i++)
        c[i] = (int)lround(a[i] + (b[i] - a[i]) * (t < 0 ? 0 : t > 1 ? 1 : t));
    snprintf(out, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
}

void cl_plot_heatmap(FILE *f, const char *id, const char *title, char *const *classes, int k,
                     const int64_t *counts) {
    int longest = 4;
    for (int i = 0; i < k; i++)
        longest = (int)strlen(classes[i]) > longest ? (int)strlen(classes[i]) : longest;
    if (longest > 18)
        longest = 18;
    double cell = k <= 4 ? 96 : k <= 8 ? 56 : 400.0 / k;
    double left = 40 + longest * 7.2, top = 40;
    double w = left + k * cell + 90, h = top + k * cell + 52;
    fprintf(f,
            "<svg class=\"plot\" data-plot=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" "
            "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"",
            id, w, h, w, h);
    cl_html_text(f, title);
    fprintf(f, "\">\n<rect width=\"%.0f\" height=\"%.0f\" fill=\"#fff\"/>\n<g " FONT ">\n", w, h);
    plot_text(f, w / 2, 20, "middle", 14, "font-weight=\"bold\"", title);
    int font = cell >= 56 ? 13 : cell >= 36 ? 10 : 8;
    fputs("<g class=\"series\" data-name=\"confusion\">\n", f);
    for (int r = 0; r < k; r++) {
        int64_t row = 0;
        for (int c = 0; c < k; c++)
            row += counts[(size_t)r * k + c];
        for (int c = 0; c < k; c++) {
            int64_t v = counts[(size_t)r * k + c];
            double frac = row > 0 ? (double)v / (double)row : 0;
            char col[8];
            plot_ramp(frac, col);
            double x = left + c * cell, y = top + r * cell;
            fprintf(f, "<rect class=\"cell\" data-actual=\"");
            cl_html_text(f, classes[r]);
            fputs("\" data-predicted=\"", f);
            cl_html_text(f, classes[c]);
            fprintf(f,
                    "\" data-count=\"%lld\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                    "fill=\"%s\" stroke=\"#fff\"/>",
                    (long long)v, x, y, cell, cell, col);
            const char *ink = frac > 0.5 ? "#fff" : "#000";
            fprintf(f,
                    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"%d\" "
                    "fill=\"%s\">%lld</text>",
                    x + cell / 2, y + cell / 2 - (cell >= 36 ? 2 : -3), font, ink, (long long)v);
            if (cell >= 36)
                fprintf(f,
                        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"%d\" "
                        "fill=\"%s\">%.1f%%</text>",
                        x + cell / 2, y + cell / 2 + font + 1, font - 2, ink, 100 * frac);
            fputc('\n', f);
        }
    }
    fputs("</g>\n", f);
    for (int i = 0; i < k; i++) {
        char lab[24];
        snprintf(lab, sizeof lab, "%.18s", classes[i]);
        plot_text(f, left - 6, top + i * cell + cell / 2 + 4, "end", 12, NULL, lab);
        char tr[96];
        double cx = left + i * cell + cell / 2, cy = top + k * cell + 16;
        snprintf(tr, sizeof tr, "transform=\"rotate(%d %.1f %.1f)\"", k > 4 ? -30 : 0, cx, cy);
        plot_text(f, cx, cy, k > 4 ? "end" : "middle", 12, tr, lab);
    }
    plot_text(f, left + k * cell / 2, h - 8, "middle", 13, NULL, "predicted class");
    char tr[80];
    snprintf(tr, sizeof tr, "transform=\"rotate(-90 14 %.1f)\"", top + k * cell / 2);
    plot_text(f, 14, top + k * cell / 2, "middle", 13, tr, "true class");
    /* colour scale: row percentage */
    double bx = left + k * cell + 24, bh = k * cell;
    fprintf(f, "<defs><linearGradient id=\"ramp-%s\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">", id);
    for (int i = 0; i <= 4; i++) {
        char col[8];
        plot_ramp(i / 4.0, col);
        fprintf(f, "<stop offset=\"%d%%\" stop-color=\"%s\"/>", i * 25, col);
    }
    fprintf(f,
            "</linearGradient></defs><rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"%.1f\" "
            "fill=\"url(#ramp-%s)\" stroke=\"#999\"/>\n",
            bx, top, bh, id);
    for (int i = 0; i <= 4; i++) {
        char lab[16];
        snprintf(lab, sizeof lab, "%d%%", i * 25);
        plot_text(f, bx + 18, top + bh - i * bh / 4 + 4, "start", 11, NULL, lab);
    }
    fputs("</g>\n</svg>\n", f);
}
