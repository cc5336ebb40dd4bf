/*
 * bench_products (issue 16 items 1 and 5): the Winograd engine's products
 * step alone, one thread, for each 3x3 layer of VGG16 at 224 (batch 8 unless
 * --batch), in FP32 and in each reduced precision this CPU runs natively:
 *
 *   cache   every task of the layer's first block at position 0: V[0] and
 *           U[0] stay in the caches; M is written at the engine's strides
 *   layer   every task of the block, as the network runs it: V and U
 *           distinct per position, U's next panel prefetched
 *
 * and the kernel alone on 14 tiles with its data in L1 (kernel_gmacs). The
 * gap between kernel and cache is what M's strided writes and the block's
 * remainder rows cost; between cache and layer, what fetching each
 * position's V and U costs. G multiply-adds per second (Winograd's, 64 per
 * tile, input and output channel); given one thread's peak of a format in
 * GFLOPS (../shared/bench/peers.sh peak: fma_avx512_fp32, dpbf16_avx512,
 * fma_avx512_fp16; on a CPU without AVX-512, bench/fma_peak's one thread),
 * also the share of it. The build the engine runs here: AVX-512, or AVX2
 * (FP32 only, its own kernel: wg_kernel8).
 *
 *   build/bench/bench_products [--batch N] [--seconds S]
 *                              [--peak1-fp32 G] [--peak1-bf16 G] [--peak1-fp16 G]
 */
#include "conv.h"
#include "cpu.h"
#include "precision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* VGG16's 3x3 layers after the first (whose 3 input channels run on their
 * own engine): input channels, output channels, input size at 224. */
static const struct {
    const char *name;
    int cin, cout, size;
} layers[] = {
    {"block1_conv2", 64, 64, 224},  {"block2_conv1", 64, 128, 112}, {"block2_conv2", 128, 128, 112},
    {"block3_conv1", 128, 256, 56}, {"block3_conv2", 256, 256, 56}, {"block4_conv1", 256, 512, 28},
    {"block4_conv2", 512, 512, 28}, {"block5_conv1", 512, 512, 14},
};

static void usage(void) {
    fprintf(stderr, "usage: bench_products [--batch N] [--seconds S] [--peak1-fp32 GFLOPS] "
                    "[--peak1-bf16 GFLOPS] [--peak1-fp16 GFLOPS]\n");
    exit(2);
}

static void cell(double gmacs, double peak) {
    if (peak > 0)
        printf(" %7.1f (%3.0f%%) |", gmacs, 100.0 * 2 * gmacs / peak);
    else
        printf(" %7.1f |", gmacs);
}

int main(int argc, char **argv) {
    int batch = 8;
    double seconds = 0.3, peak[3] = {0}; /* indexed by precs[] below */
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "--batch"))
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--peak1-fp32"))
            peak[0] = atof(argv[++i]);
        else if (!strcmp(argv[i], "--peak1-bf16"))
            peak[1] = atof(argv[++i]);
        else if (!strcmp(argv[i], "--peak1-fp16"))
            peak[2] = atof(argv[++i]);
        else
            usage();
    }
    if (batch < 1 || !(seconds > 0))
        usage();
    if (bn_conv_winograd_isa() == BN_WINOGRAD_PORTABLE) {
        fprintf(stderr, "bench_products: the engine's AVX-512 and AVX2 kernels do not run here\n");
        return 77;
    }
    /* FP32, then the reduced precisions that run natively here */
    bn_precision precs[4] = {BN_PRECISION_FP32};
    double pk[4] = {peak[0]};
    int nprec = 1;
    if (bn_conv_winograd_has_precision(BN_PRECISION_BF16)) {
        pk[nprec] = peak[1];
        precs[nprec++] = BN_PRECISION_BF16;
    }
    if (bn_conv_winograd_has_precision(BN_PRECISION_FP16) && !bn_conv_winograd_fp16_emulated()) {
        pk[nprec] = peak[2];
        precs[nprec++] = BN_PRECISION_FP16;
    }
    if (bn_conv_winograd_has_precision(BN_PRECISION_AMX)) { /* no peak given: GFLOPS only */
        pk[nprec] = 0;
        precs[nprec++] = BN_PRECISION_AMX;
    }
    char caches[160];
    bn_cpu_caches_format(bn_cpu_caches(), caches, sizeof caches);
    printf("INFO cpu=\"%s\" caches %s batch=%d one thread\n", bn_cpu_model(), caches, batch);
    for (int q = 0; q < nprec; q++)
        printf("INFO kernel_gmacs %s=%.1f (14 tiles x 32 outputs x 256 inputs, in L1; amx: 32 "
               "tiles)\n",
               bn_precision_name(precs[q]), bn_conv_winograd_kernel_gmacs(precs[q], 3, seconds));
    printf("\n| layer | input |");
    for (int q = 0; q < nprec; q++)
        printf(" %s cache | %s layer | layer / cache |", bn_precision_name(precs[q]),
               bn_precision_name(precs[q]));
    printf("\n|---|---|");
    for (int q = 0; q < nprec; q++)
        printf("---:|---:|---:|");
    printf("\n");
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        int s = layers[l].size;
        printf("| %s | %dx%dx%d |", layers[l].name, s, s, layers[l].cin);
        for (int q = 0; q < nprec; q++) {
            double c = bn_conv_winograd_products_gmacs(precs[q], layers[l].cin, layers[l].cout,
                                                       batch, s, s, 1, 3, seconds);
            double y = bn_conv_winograd_products_gmacs(precs[q], layers[l].cin, layers[l].cout,
                                                       batch, s, s, 0, 3, seconds);
            cell(c, pk[q]);
            cell(y, pk[q]);
            printf(" %.2f |", c > 0 ? y / c : 0);
            fflush(stdout);
        }
        printf("\n");
    }
    return 0;
}
