/*
 * fuzz_weights.c: libFuzzer harness for the Keras HDF5 weights loader
 * (common/weights.c): the input is a weights file. It loads (all 13 convs with
 * the right shapes) or fails with one line naming the file, and leaves the
 * weights empty; nothing leaks either way. libhdf5 itself is not built with
 * the fuzzer's instrumentation: what is explored is our walk over what it
 * returns (attributes, strings, groups, shapes).
 */
#include "fuzz.h"
#include "weights.h"

#include <string.h>

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
    bn_weights_free(&w);
    return 0;
}
