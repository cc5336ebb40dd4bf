/*
 * progress.c: progress bar / periodic lines (see progress.h).
 */
#include "progress.h"

#include <time.h>
#include <unistd.h>

double bn_progress_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void bn_progress_start(bn_progress *p, FILE *out, const char *label, const char *unit, long total,
                       int quiet) {
    p->out = out;
    p->tty = out && isatty(fileno(out));
    p->quiet = quiet || !out;
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->done = 0;
    p->drawn = -1;
    p->start = bn_progress_now();
    p->last_draw = 0;
}

static void format_eta(char *buf, size_t n, double seconds) {
    if (seconds < 0 || seconds > 359999) {
        snprintf(buf, n, "--:--");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else
        snprintf(buf, n, "%02ld:%02ld", s / 60, s % 60);
}

static void draw(bn_progress *p, double now, int final) {
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0;
    char eta[32];
    format_eta(eta, sizeof eta,
               rate > 0 && p->total > 0 ? (double)(p->total - p->done) / rate : -1);
    /* The last line of work that ended short of its total (an error, a
     * signal) has no time left to estimate. */
    if (final)
        snprintf(eta, sizeof eta, "%s",
                 p->total > 0 && p->done < p->total ? "none (stopped)" : "00:00");
    if (p->tty) {
        char bar[31];
        int width = 30,
            fill = p->total > 0 ? (int)((double)width * (double)p->done / (double)p->total) : 0;
        if (fill > width)
            fill = width;
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(p->out, "\r%s [%s] %ld/%ld %s  %.2f %s/s  ETA %s\033[K", p->label, bar, p->done,
                p->total, p->unit, rate, p->unit, eta);
        if (final)
            fputc('\n', p->out);
    } else {
        fprintf(p->out, "%s: %ld/%ld %s, %.2f %s/s, %.1f s elapsed, ETA %s\n", p->label, p->done,
                p->total, p->unit, rate, p->unit, elapsed, eta);
    }
    fflush(p->out);
    p->last_draw = now;
    p->drawn = p->done;
}

void bn_progress_update(bn_progress *p, long done) {
    p->done = done;
    /* 0 of an unknown total (a download before the server answered) says
     * nothing: an error then stands alone. */
    if (p->quiet || (done == 0 && p->total <= 0))
        return;
    double now = bn_progress_now();
    /* A terminal can take ten redraws a second; a log wants a line every 10 s. */
    double every = p->tty ? 0.1 : 10.0;
    if (now - p->last_draw >= every)
        draw(p, now, 0);
}

void bn_progress_finish(bn_progress *p) {
    /* Nothing done and nothing shown: work that failed before its first
     * item (a model file refused, say) ends with its error line alone. */
    if (p->drawn < 0 && p->done == 0)
        return;
    if (!p->quiet && (p->tty || p->done != p->drawn))
        draw(p, bn_progress_now(), 1);
}
