/*
 * fuzz_weights.c: libFuzzer harness for the Keras HDF5 weights loader
 * (common/weights.c): the input is a weights file. It loads (all 13 convs with
 * the right shapes) or fails with one line naming the file, and leaves the
 * weights empty; nothing leaks either way. The shapes are checked against
 * VGG16's table written out here (not weights.c's copy), and each buffer's
 * first and last value are read, so that a short buffer is a sanitizer
 * report. libhdf5 itself is not built with the fuzzer's instrumentation: what
 * is explored is our walk over what it returns (attributes, strings, groups,
 * shapes).
 */
#include "fuzz.h"
#include "weights.h"

#include <string.h>

/* VGG16's 13 convolutions, (input, output) channels, from the paper's
 * configuration D: 64 64, 128 128, 256 x3, 512 x3, 512 x3. */
static const int vgg16_channels[BN_VGG16_NCONV][2] = {
    {3, 64},    {64, 64},   {64, 128},  {128, 128}, {128, 256}, {256, 256}, {256, 256},
    {256, 512}, {512, 512}, {512, 512}, {512, 512}, {512, 512}, {512, 512},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_as_file(data, size);
    bn_vgg16_weights w;
    bn_error err = {0};
    if (bn_weights_load(&w, path, &err) != BN_OK) {
        if (!err.msg[0] || strchr(err.msg, '\n'))
            abort();
        for (int i = 0; i < BN_VGG16_NCONV; i++)
            if (w.conv[i].kernel || w.conv[i].bias)
                abort(); /* "on error *w is left empty" */
        return 0;
    }
    /* Loaded: the 13 shapes exactly, the first and last value of every
     * buffer there (a sanitizer report if one is shorter than its shape;
     * reading all 14.7M values made each load 10x slower), and the file's
     * hash. */
    volatile float sink = 0;
    for (int i = 0; i < BN_VGG16_NCONV; i++) {
        const bn_conv_weights *c = &w.conv[i];
        if (c->cin != vgg16_channels[i][0] || c->cout != vgg16_channels[i][1] || !c->kernel ||
            !c->bias)
            abort();
        sink += c->kernel[0] + c->kernel[(size_t)9 * c->cin * c->cout - 1];
        sink += c->bias[0] + c->bias[c->cout - 1];
    }
    if (strlen(w.sha256) != 64 || strspn(w.sha256, "0123456789abcdef") != 64)
        abort();
    (void)sink;
    bn_weights_free(&w);
    return 0;
}
