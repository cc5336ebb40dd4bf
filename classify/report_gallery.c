/*
 * report_gallery.c: the most confident mistakes of the evaluated split of
 * the report's first run, each with its thumbnail, true and predicted class,
 * probability, and its nearest training image (cosine distance between the
 * stored vectors, as vec_distance_cosine; the training rows are those of the
 * run's training splits).
 *
 * Thumbnails are made with libvips (bn_image_thumbnail_jpeg: shrink-on-load,
 * 170 px, JPEG quality 80, about 6-10 kB each) from the image files under
 * --images DIR (the database stores paths relative to the dataset folder),
 * and embedded as data: URIs. A file that is gone or cannot be decoded any
 * more becomes a labelled placeholder saying why; the report is still
 * written.
 */
#include "report.h"

#include "image.h"
#include "progress.h"

#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define THUMB_SIZE 170

typedef struct {
    int row;
    double p;
} gal_mistake;

static int gal_by_confidence(const void *a, const void *b) {
    const gal_mistake *x = a, *y = b;
    if (x->p != y->p)
        return x->p < y->p ? 1 : -1;
    return (x->row > y->row) - (x->row < y->row);
}

/* <img> with the thumbnail, or the placeholder. */
static void gal_thumb(rep_ctx *c, FILE *f, const char *relpath) {
    char why[1200] = "";
    if (!c->o->images) {
        snprintf(why, sizeof why, "no image folder given (--images DIR)");
    } else {
        char *path = g_build_filename(c->o->images, relpath, NULL);
        gchar *data = NULL;
        gsize len = 0;
        GError *gerr = NULL;
        if (!g_file_get_contents(path, &data, &len, &gerr)) {
            snprintf(why, sizeof why, "cannot be read: %s", gerr ? gerr->message : "?");
            g_clear_error(&gerr);
        } else {
            void *jpeg = NULL;
            size_t jlen = 0;
            bn_error err;
            if (bn_image_thumbnail_jpeg(data, len, path, THUMB_SIZE, &jpeg, &jlen, &err)) {
                snprintf(why, sizeof why, "cannot be decoded: %s", err.msg);
            } else {
                gchar *b64 = g_base64_encode(jpeg, jlen);
                fputs("<img alt=\"", f);
                cl_html_text(f, relpath);
                fprintf(f, "\" src=\"data:image/jpeg;base64,%s\">", b64 ? b64 : "");
                g_free(b64);
                bn_image_free_buffer(jpeg);
            }
            g_free(data);
        }
        g_free(path);
    }
    if (c->o->images) {
        c->thumbs++;
        if (why[0] && !c->thumbs_missing++)
            snprintf(c->thumb_missing, sizeof c->thumb_missing, "%s: %s", relpath, why);
    }
    if (why[0]) {
        fputs("<div class=\"missing\" role=\"img\" aria-label=\"image not available\">image not "
              "available<br>",
              f);
        cl_html_text(f, why);
        fputs("</div>", f);
    }
}

static double gal_norm(const float *v, int dim) {
    double s = 0;
    for (int j = 0; j < dim; j++)
        s += (double)v[j] * v[j];
    return sqrt(s);
}

int rep_gallery_section(rep_ctx *c, FILE *f, bn_error *err) {
    const rep_run *rr = &c->run[0];
    const rep_split *sp = &rr->split[rr->eval];
    int n = sp->f.n, k = rr->r.k, dim = sp->f.dim;
    gal_mistake *mis = malloc((size_t)n * sizeof *mis);
    if (!mis)
        return bn_fail(err, BN_ENOMEM, "report: out of memory");
    int nm = 0;
    for (int i = 0; i < n; i++) {
        const double *p = sp->proba + (size_t)i * k;
        int pred = bn_metrics_argmax(p, k);
        if (pred != sp->y[i])
            mis[nm].row = i, mis[nm].p = p[pred], nm++;
    }
    qsort(mis, (size_t)nm, sizeof *mis, gal_by_confidence);
    int show = nm < c->gallery ? nm : c->gallery;
    fprintf(f,
            "<h2 id=\"mistakes\">Most confident mistakes</h2>\n<p class=\"note\">%d of the %d "
            "images of <b>",
            show, nm);
    cl_html_text(f, sp->name);
    fprintf(f,
            "</b>%s that run %lld classifies wrongly, the most confident first; beside each, "
            "the nearest image of its training rows by cosine distance between the stored "
            "vectors.</p>\n<div class=\"gallery\">\n",
            sp->training ? " (rows the run was trained on)" : "", (long long)rr->r.id);
    /* norms of the training rows, once */
    double **tnorm = calloc((size_t)rr->nsplits, sizeof *tnorm);
    if (!tnorm) {
        free(mis);
        return bn_fail(err, BN_ENOMEM, "report: out of memory");
    }
    for (int s = 0; s < rr->nsplits; s++) {
        const rep_split *t = &rr->split[s];
        if (!t->training || !show)
            continue;
        tnorm[s] = malloc((size_t)t->f.n * sizeof **tnorm);
        if (tnorm[s])
            for (int i = 0; i < t->f.n; i++)
                tnorm[s][i] = gal_norm(t->f.x + (size_t)i * dim, dim);
    }
    bn_progress bar;
    bn_progress_start(&bar, stderr, "report: thumbnails", "img", show, c->o->quiet);
    for (int m = 0; m < show; m++) {
        int i = mis[m].row;
        const float *v = sp->f.x + (size_t)i * dim;
        double vn = gal_norm(v, dim), best = INFINITY;
        int bs = -1, bi = -1;
        for (int s = 0; s < rr->nsplits; s++) {
            const rep_split *t = &rr->split[s];
            if (!tnorm[s])
                continue;
            for (int j = 0; j < t->f.n; j++) {
                if (t->f.image[j] == sp->f.image[i])
                    continue; /* the same image */
                const float *w = t->f.x + (size_t)j * dim;
                double dot = 0;
                for (int d = 0; d < dim; d++)
                    dot += (double)v[d] * w[d];
                double den = vn * tnorm[s][j];
                double dist = den > 0 ? 1 - dot / den : 1;
                if (dist < best)
                    best = dist, bs = s, bi = j;
            }
        }
        int pred = bn_metrics_argmax(sp->proba + (size_t)i * k, k);
        fputs("<div class=\"card mistake\">\n<div class=\"pair\"><figure>", f);
        gal_thumb(c, f, sp->f.path[i]);
        fputs("<figcaption><code>", f);
        cl_html_text(f, sp->f.path[i]);
        fputs("</code><br>true <b>", f);
        cl_html_text(f, rr->r.classes[sp->y[i]]);
        fputs("</b>, predicted <span class=\"wrong\">", f);
        cl_html_text(f, rr->r.classes[pred]);
        fprintf(f, "</span> (p = <span class=\"probability\">%.4f</span>)</figcaption></figure>\n",
                mis[m].p);
        fputs("<figure>", f);
        if (bs >= 0) {
            const rep_split *t = &rr->split[bs];
            gal_thumb(c, f, t->f.path[bi]);
            fputs("<figcaption>nearest training image: <code>", f);
            cl_html_text(f, t->f.path[bi]);
            fputs("</code><br>", f);
            cl_html_text(f, rr->r.classes[t->y[bi]]);
            fprintf(f, ", cosine distance %.4f</figcaption>", best);
        } else {
            fputs("<div class=\"missing\">no training vectors</div>", f);
        }
        fputs("</figure></div>\n</div>\n", f);
        bn_progress_update(&bar, m + 1);
    }
    bn_progress_finish(&bar);
    if (nm == 0)
        fputs("<p>No mistakes on this split.</p>\n", f);
    fputs("</div>\n", f);
    for (int s = 0; s < rr->nsplits; s++)
        free(tnorm[s]);
    free(tnorm);
    free(mis);
    return BN_OK;
}
