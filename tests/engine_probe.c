/*
 * engine_probe.c: prints which convolution code this process would run, as
 * one line "auto=ENGINE winograd=PATH": the engine that `--conv auto` (the
 * default) resolves to, and which build of the Winograd kernels `--conv
 * winograd` runs (avx512 or portable). Asked of the library itself, through
 * the same calls the network makes, so the answer cannot drift from what
 * runs.
 *
 * Why: under valgrind, CPUID hides AVX-512 (valgrind cannot execute it), so
 * a memcheck run of the programs never reaches the fast kernels whatever the
 * machine; tests/reliability_valgrind.sh runs this under valgrind and fails
 * when what it claims to check is not what runs.
 */
#include "conv.h"
#include "conv_internal.h"

#include <stdio.h>

int main(void) {
    /* A one-channel layer: creating it is cheap, and resolution does not
     * depend on the channel counts (conv.c, conv_resolve). */
    static const float kernel[9] = {0}, bias[1] = {0};
    bn_conv *c;
    bn_error err = {0};
    if (bn_conv_create(&c, BN_CONV_AUTO, 1, 1, kernel, bias, &err) != BN_OK) {
        fprintf(stderr, "engine_probe: %s\n", err.msg);
        return 1;
    }
    printf("auto=%s winograd=%s\n", bn_conv_engine_name(bn_conv_engine_of(c)),
           bn_conv_winograd_fast() ? "avx512" : "portable");
    bn_conv_free(c);
    return 0;
}
