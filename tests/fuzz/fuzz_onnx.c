/*
 * fuzz_onnx.c: libFuzzer harness for the ONNX reader (common/onnx.c) and the
 * graph's shape inference (common/graph.c): the input is a model file. It
 * loads and infers at 32x32 (then the graph is freed), or fails with one
 * line naming the file; nothing leaks either way. A graph that loads must
 * keep its promises (checked below: names, lookups, shapes, the default
 * feature). libprotobuf-c's decoder is
 * not instrumented: what is explored is our walk over the decoded message
 * (initializers, attributes, nodes, shapes).
 */
#include "fuzz.h"
#include "graph.h"
#include "onnx.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bn_graph *g = NULL;
    bn_error err = {0};
    int rc = bn_onnx_load_buffer(&g, data, size, "fuzz.onnx", NULL, &err);
    if (rc == BN_OK)
        rc = bn_graph_infer(g, 32, 32, &err);
    /* load errors name the file; inference errors name the node */
    int named = strstr(err.msg, "fuzz.onnx") || strstr(err.msg, "node '");
    if (rc != BN_OK && (!err.msg[0] || strchr(err.msg, '\n') || !named))
        abort();
    if (rc == BN_OK) {
        /* What a loaded graph promises its users (extract's `layers`,
         * --layer NAME): tensor 0 is the input, every tensor has a name that
         * finds a tensor of that name, and a shape with every dimension
         * positive and an element count that fits (inference refuses absurd
         * ones); the default feature tensor is one of them. */
        int n = bn_graph_tensor_count(g);
        if (n < 1 || strcmp(bn_graph_tensor_name(g, 0), bn_graph_input_name(g)) != 0)
            abort();
        for (int i = 0; i < n; i++) {
            const char *name = bn_graph_tensor_name(g, i);
            bn_shape sh = bn_graph_tensor_shape(g, i);
            int j = name ? bn_graph_find(g, name) : -1;
            if (!name || j < 0 || strcmp(bn_graph_tensor_name(g, j), name) != 0)
                abort();
            if (sh.c < 1 || sh.h < 1 || sh.w < 1 ||
                (double)sh.c * sh.h * sh.w > (double)((size_t)1 << 40))
                abort();
        }
        const char *feature = bn_graph_default_feature(g);
        if (!feature || bn_graph_find(g, feature) < 0)
            abort();
    }
    bn_graph_free(g);
    return 0;
}
