/*
 * conv_winograd.c: STUB, written by the conv/network engineer so that conv.c
 * links. The Winograd engineer (issue 5) replaces this whole file with the
 * real engine.
 *
 * Until then, asking for BN_CONV_WINOGRAD fails cleanly at creation with
 * BN_EINVAL "winograd engine not built yet"; AUTO never picks it.
 */
#include "conv_internal.h"

static int winograd_stub_prepare(bn_conv *c, const float *kernel, bn_error *err) {
    (void)c;
    (void)kernel;
    return bn_fail(err, BN_EINVAL, "conv_winograd: winograd engine not built yet");
}

static size_t winograd_stub_workspace(const bn_conv *c, int n, int h, int w) {
    (void)c;
    (void)n;
    (void)h;
    (void)w;
    return 0;
}

static void winograd_stub_forward(const bn_conv *c, const float *in, float *out, int n, int h,
                                  int w, void *workspace) {
    (void)c;
    (void)in;
    (void)out;
    (void)n;
    (void)h;
    (void)w;
    (void)workspace;
}

static void winograd_stub_release(bn_conv *c) {
    (void)c;
}

const bn_conv_ops bn_conv_winograd_ops = {
    .prepare = winograd_stub_prepare,
    .workspace = winograd_stub_workspace,
    .forward = winograd_stub_forward,
    .release = winograd_stub_release,
};
