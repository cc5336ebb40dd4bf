/*
 * progress.h: progress of long work on stderr.
 *
 * On a terminal: one redrawn line with a bar, count, rate and ETA. Otherwise
 * (a pipe, a log file, CI): a plain line every few seconds. Quiet: nothing.
 * It writes only to the stream the program hands it (as json.c does for
 * --json output): the program decides where, and whether, anything shows.
 */
#ifndef BN_PROGRESS_H
#define BN_PROGRESS_H

#include <stdio.h>

typedef struct {
    FILE *out;
    int tty, quiet;
    const char *label;       /* "extract", ... */
    const char *unit;        /* "img" */
    long total, done, drawn; /* drawn: done at the last line printed */
    double start, last_draw;
} bn_progress;

/* total may be 0 if unknown. */
void bn_progress_start(bn_progress *p, FILE *out, const char *label, const char *unit, long total,
                       int quiet);
void bn_progress_update(bn_progress *p, long done);
/* The last line (on a terminal: the bar at its end, then a newline); none
 * when nothing was done and nothing shown. */
void bn_progress_finish(bn_progress *p);

/* Monotonic seconds. */
double bn_progress_now(void);

#endif
