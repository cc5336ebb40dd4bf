/*
 * bench_transforms (issue 16 item 5): the Winograd engine's input and output
 * transforms alone, one thread, FP32, for each 3x3 layer of VGG16 at 224
 * (batch 8 unless --batch), every block of the batch in turn as the engine
 * plans it (V and the output past the caches where it writes them so).
 * Milliseconds per batch, nanoseconds per tile and 16 channels (input: per
 * 16 input channels, output: per 16 output channels), and the share of tiles
 * whose 8x8 input patch crosses the image's edge: those are loaded pixel by
 * pixel, and they are 10% of the tiles at 224, 36% at 56 and 89% at 14. The
 * products are bench_products'; together the two say where a layer's time
 * goes without a profiling build.
 *
 *   build/bench/bench_transforms [--batch N] [--reps N]
 */
#include "conv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* VGG16's 3x3 layers after the first: input and output channels, input
 * size at 224, and whether the engine fuses the 2x2 max pool after it. */
static const struct {
    const char *name;
    int cin, cout, size, pool;
} layers[] = {
    {"block1_conv2", 64, 64, 224, 1},   {"block2_conv1", 64, 128, 112, 0},
    {"block2_conv2", 128, 128, 112, 1}, {"block3_conv1", 128, 256, 56, 0},
    {"block3_conv2", 256, 256, 56, 0},  {"block3_conv3", 256, 256, 56, 1},
    {"block4_conv1", 256, 512, 28, 0},  {"block4_conv2", 512, 512, 28, 0},
    {"block4_conv3", 512, 512, 28, 1},  {"block5_conv1", 512, 512, 14, 0},
    {"block5_conv2", 512, 512, 14, 0},  {"block5_conv3", 512, 512, 14, 1},
};

static void usage(void) {
    fprintf(stderr, "usage: bench_transforms [--batch N] [--reps N]\n");
    exit(2);
}

int main(int argc, char **argv) {
    int batch = 8, reps = 5;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--batch") == 0)
            batch = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[++i]);
        else
            usage();
    }
    if (batch < 1 || reps < 1)
        usage();
    const bn_winograd_isa isa = bn_conv_winograd_isa();
    printf("INFO build=%s batch=%d reps=%d (best of reps, one thread)\n",
           isa == BN_WINOGRAD_AVX512 ? "avx512"
           : isa == BN_WINOGRAD_AVX2 ? "avx2"
                                     : "portable",
           batch, reps);
    printf("\n| layer | input | edge tiles | input ms | ns per tile x 16 in | output ms | ns per "
           "tile x 16 out |\n|---|---|---:|---:|---:|---:|---:|\n");
    double sum_in = 0, sum_out = 0;
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        const int s = layers[l].size, cin = layers[l].cin, cout = layers[l].cout;
        double tin, tout, edge;
        if (bn_conv_winograd_transforms_time(cin, cout, batch, s, s, layers[l].pool, reps, &tin,
                                             &tout, &edge) != 0) {
            fprintf(stderr, "bench_transforms: %s: out of memory\n", layers[l].name);
            return 1;
        }
        const double tiles = (double)batch * ((s + 5) / 6) * ((s + 5) / 6);
        printf("| %s | %dx%dx%d | %.0f%% | %.2f | %.0f | %.2f | %.0f |\n", layers[l].name, s, s,
               cin, 100 * edge, 1e3 * tin, 1e9 * tin / (tiles * cin / 16), 1e3 * tout,
               1e9 * tout / (tiles * cout / 16));
        sum_in += tin;
        sum_out += tout;
    }
    printf("\nRESULT bench=transforms batch=%d input_ms=%.2f output_ms=%.2f (the 12 layers "
           "above)\n",
           batch, 1e3 * sum_in, 1e3 * sum_out);
    return 0;
}
