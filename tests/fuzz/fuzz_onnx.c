/*
 * fuzz_onnx.c: libFuzzer harness for the ONNX reader (common/onnx.c) and the
 * graph's shape inference (common/graph.c): the input is a model file. It
 * loads and infers at 32x32 (then the graph is freed), or fails with one
 * line naming the file; nothing leaks either way. libprotobuf-c's decoder is
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
    bn_graph_free(g);
    return 0;
}
