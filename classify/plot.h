/*
 * plot.h: figures as inline SVG for the HTML report (cmd_report.c): line,
 * step, scatter and histogram plots on linear or log axes, and the confusion
 * matrix heat map. Our own small module rather than cairo or PLplot: the
 * report needs a few plot kinds, text that stays text (selectable, sharp when
 * printed, found by the tests that parse the page) and nothing to install.
 *
 * Conventions (what makes a figure fit for a paper): labelled axes, ticks at
 * round numbers (1, 2, 5 x 10^k; decades on log axes), a legend, the
 * Okabe-Ito colour-blind-safe palette, and dashes and marker shapes that
 * still tell series apart when printed in grey.
 *
 * A plot collects its series (copied) and writes itself once the ranges are
 * known. Each series is a <g class="series" data-name="..."> element; lines
 * also carry their points in data units (data-x, data-y) so that tests can
 * recompute what is drawn.
 */
#ifndef CL_PLOT_H
#define CL_PLOT_H

#include <stdint.h>
#include <stdio.h>

typedef struct cl_plot cl_plot;

enum { CL_LINE, CL_STEP, CL_POINTS, CL_HIST };
enum {
    CL_MARK_NONE,
    CL_MARK_CIRCLE,
    CL_MARK_SQUARE,
    CL_MARK_TRIANGLE,
    CL_MARK_DIAMOND,
    CL_MARK_RING
};
enum {
    CL_LEGEND_LOWER_RIGHT,
    CL_LEGEND_UPPER_RIGHT,
    CL_LEGEND_UPPER_LEFT,
    CL_LEGEND_LOWER_LEFT,
    CL_LEGEND_NONE
};

#define CL_PALETTE_SIZE 7
/* Okabe-Ito colour i (modulo the palette), "#rrggbb". */
const char *cl_palette(int i);

/* id: the data-plot attribute (a word); title may be NULL. NULL if out of memory. */
cl_plot *cl_plot_new(const char *id, const char *title);
void cl_plot_free(cl_plot *p);

/* axis 0 = x, 1 = y. lo/hi NAN: from the data, widened to round ticks. */
void cl_plot_axis(cl_plot *p, int axis, const char *label, double lo, double hi, int log);
void cl_plot_legend(cl_plot *p, int where);
/* The dashed grey y = x line ("chance" on ROC, "perfectly calibrated"). */
void cl_plot_diagonal(cl_plot *p, const char *name);

/* Add a series; x and y hold n values (CL_HIST: x the n+1 bin edges, y the
 * n bar heights). colour is a palette index; dash 0 solid, 1 dashed, 2
 * dotted, 3 dash-dot. Returns 0, or -1 out of memory. */
int cl_plot_series(cl_plot *p, int kind, const char *name, int colour, int dash, int marker,
                   const double *x, const double *y, int n);

/* Write <svg ...>...</svg>. */
void cl_plot_write(const cl_plot *p, FILE *f);

/* The confusion matrix as a heat map: cells coloured by the row fraction,
 * each with its count and row percentage; rows actual, columns predicted. */
void cl_plot_heatmap(FILE *f, const char *id, const char *title, char *const *classes, int k,
                     const int64_t *counts);

/* Text for HTML and SVG: & < > " ' escaped. */
void cl_html_text(FILE *f, const char *s);

#endif
