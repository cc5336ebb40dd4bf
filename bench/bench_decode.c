/*
 * bench_decode: what the extractor's decoding costs per photo, alone, on one
 * thread (issue 16 item 4: the time between forward passes is decoding).
 *
 *   bench_decode [--size N] [--rounds R] [--flush MB] [--libvips] FILE...
 *
 * Reads every file into memory first (no disk in the timing), then decodes
 * them all R times (default 5) with bn_image_decode at the extractor's
 * defaults (squash to 224, Caffe preprocessing). Prints the median
 * milliseconds per photo, the CPU time of the process over the rounds, and
 * how many photos the direct libjpeg-turbo path took (image_jpeg.h).
 * --libvips sends plain JPEGs through libvips too (bn_image_set_direct_jpeg).
 * Run it under `perf record` to see where a decode goes.
 */
#include "bench_util.h"
#include "error.h"
#include "image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *name;
    unsigned char *buf;
    size_t len;
} file;

static int read_all(const char *path, file *f) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -1;
    f->name = path;
    f->buf = NULL;
    f->len = 0;
    size_t cap = 0;
    for (;;) {
        if (f->len == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            unsigned char *p = realloc(f->buf, cap);
            if (!p) {
                fclose(fp);
                return -1;
            }
            f->buf = p;
        }
        size_t n = fread(f->buf + f->len, 1, cap - f->len, fp);
        if (!n)
            break;
        f->len += n;
    }
    int bad = ferror(fp);
    fclose(fp);
    return bad ? -1 : 0;
}

int main(int argc, char **argv) {
    /* OpenBLAS, loaded with the library, starts a thread per core that
     * spins for a while: in a short run that counted as much CPU as the
     * decoding. One thread, set before it loads. */
    if (!getenv("OPENBLAS_NUM_THREADS")) {
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        execv("/proc/self/exe", argv);
    }
    int size = 224, rounds = 5, first = 1, flush_mb = 0, libvips = 0;
    while (first < argc && !strncmp(argv[first], "--", 2)) {
        if (!strcmp(argv[first], "--libvips")) {
            libvips = 1;
            first++;
            continue;
        }
        if (!strcmp(argv[first], "--size") && first + 1 < argc)
            size = atoi(argv[first + 1]);
        else if (!strcmp(argv[first], "--rounds") && first + 1 < argc)
            rounds = atoi(argv[first + 1]);
        else if (!strcmp(argv[first], "--flush") && first + 1 < argc)
            flush_mb = atoi(argv[first + 1]);
        else {
            fprintf(stderr, "bench_decode: unknown option %s\n", argv[first]);
            return 2;
        }
        first += 2;
    }
    int n = argc - first;
    if (n < 1 || size < 1 || rounds < 1 || rounds > 1000) {
        fprintf(stderr,
                "usage: bench_decode [--size N] [--rounds R] [--flush MB] [--libvips] FILE...\n");
        return 2;
    }
    bn_error err = {0};
    if (bn_image_init(argv[0], &err)) {
        fprintf(stderr, "bench_decode: %s\n", err.msg);
        return 1;
    }
    bn_image_set_direct_jpeg(!libvips);
    file *f = calloc((size_t)n, sizeof *f);
    float *out = malloc((size_t)size * size * 3 * sizeof *out);
    double *ms = malloc((size_t)rounds * sizeof *ms);
    if (!f || !out || !ms) {
        fprintf(stderr, "bench_decode: out of memory\n");
        return 1;
    }
    for (int i = 0; i < n; i++)
        if (read_all(argv[first + i], &f[i])) {
            fprintf(stderr, "bench_decode: %s: cannot read\n", argv[first + i]);
            return 1;
        }
    bn_image_opts o = {.size = size, .resize = BN_RESIZE_SQUASH, .preprocess = BN_PREPROCESS_CAFFE};
    size_t flush_n = (size_t)flush_mb << 18;
    float *flush = flush_n ? malloc(flush_n * sizeof *flush) : NULL;
    if (flush)
        memset(flush, 0, flush_n * sizeof *flush);
    /* --flush MB: between groups of 8 photos (a batch), write MB of other
     * memory, as the network does between the extractor's decodes; that
     * time is left out of the figures. */
    double cpu0 = bench_cpu_seconds(), flush_s = 0;
    int direct = 0;
    for (int r = 0; r < rounds; r++) {
        double spent = 0;
        for (int i = 0; i < n; i++) {
            if (flush && i % 8 == 0) {
                double f0 = bench_now();
                for (size_t k = 0; k < flush_n; k += 16)
                    flush[k] += 1.0f;
                flush_s += bench_now() - f0;
            }
            double t0 = bench_now();
            bn_image_info info;
            if (bn_image_decode(f[i].buf, f[i].len, f[i].name, &o, out, &info, &err)) {
                fprintf(stderr, "bench_decode: %s\n", err.msg);
                return 1;
            }
            spent += bench_now() - t0;
            direct += r == 0 && info.direct_jpeg;
        }
        ms[r] = 1e3 * spent / n;
    }
    double cpu = bench_cpu_seconds() - cpu0 - flush_s;
    printf("decode (%s) %d photos at %d, one thread: %.3f ms/photo (median of %d rounds), CPU %.3f "
           "ms/photo, %d by the direct JPEG path\n",
           libvips ? "libvips" : "direct JPEG where it can", n, size, bench_median(ms, rounds),
           rounds, 1e3 * cpu / ((double)n * rounds), direct);
    for (int i = 0; i < n; i++)
        free(f[i].buf);
    free(f);
    free(out);
    free(ms);
    free(flush);
    bn_image_shutdown();
    return 0;
}
