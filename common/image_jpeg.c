/*
 * image_jpeg.c: plain JPEGs decoded by libjpeg-turbo directly (see
 * image_jpeg.h). Same library, same settings as libvips' jpegload at full
 * size (default IDCT and upsampling, YCbCr to RGB by libjpeg), so the same
 * pixels; only the pipeline around it is gone.
 *
 * libjpeg reports errors by calling error_exit, which must not return: it
 * longjmps back here. Warnings (corrupt data that libjpeg works around)
 * longjmp too, so that such a file goes to libvips, whose fail_on policy
 * decides what it is worth.
 */
#include "image_jpeg.h"

#include <limits.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h> /* jpeglib.h needs FILE and size_t first */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

/* Rows asked of libjpeg per call; it returns at most a few (its row group). */
#define IMAGE_JPEG_ROWS 16

typedef struct {
    struct jpeg_error_mgr pub; /* first: libjpeg sees only this */
    jmp_buf jb;
} image_jpeg_err;

struct image_jpeg {
    struct jpeg_decompress_struct d;
    image_jpeg_err e;
    int created;
    int orientation; /* Exif orientation 1..8 (1 without Exif) */
    unsigned char *rows;
};

static void image_jpeg_on_error(j_common_ptr c) {
    longjmp(((image_jpeg_err *)c->err)->jb, 1);
}

/* level < 0: a warning; >= 0: trace messages, ignored. */
static void image_jpeg_on_message(j_common_ptr c, int level) {
    if (level < 0)
        longjmp(((image_jpeg_err *)c->err)->jb, 1);
}

/* Nothing is printed: library code never writes to stderr. */
static void image_jpeg_on_output(j_common_ptr c) {
    (void)c;
}

void image_jpeg_close(image_jpeg *j) {
    if (!j)
        return;
    if (j->created)
        jpeg_destroy_decompress(&j->d);
    free(j->rows);
    free(j);
}

/* TIFF's integers in the block's byte order (be: "MM", big-endian). */
static unsigned image_jpeg_u16(const unsigned char *p, int be) {
    return be ? (unsigned)p[0] << 8 | p[1] : (unsigned)p[1] << 8 | p[0];
}

static uint32_t image_jpeg_u32(const unsigned char *p, int be) {
    return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

int image_jpeg_exif_orientation(const unsigned char *p, size_t n) {
    /* "Exif\0\0", then TIFF: byte order, 42, IFD0's offset from the TIFF
     * header, IFD0's entry count and its 12-byte entries. Every one of
     * them must lie inside the block: libexif reads a short IFD as far as
     * it goes, and what it then sees is its own business. */
    if (n < 6 + 8 || memcmp(p, "Exif\0\0", 6))
        return 0;
    const unsigned char *t = p + 6;
    const size_t tn = n - 6;
    int be;
    if (!memcmp(t, "II", 2))
        be = 0;
    else if (!memcmp(t, "MM", 2))
        be = 1;
    else
        return 0;
    if (image_jpeg_u16(t + 2, be) != 42)
        return 0;
    uint32_t ifd0 = image_jpeg_u32(t + 4, be);
    if (ifd0 < 8 || ifd0 > tn - 2)
        return 0;
    unsigned entries = image_jpeg_u16(t + ifd0, be);
    if ((size_t)entries * 12 > tn - 2 - ifd0)
        return 0;
    /* Orientation (0x0112): at most once, a SHORT, one value, 1..8; its
     * value sits in the entry itself. Absent: as stored. libexif keeps the
     * first of repeated tags, libvips clamps values out of range to 1 and
     * reads other integer formats too: those rare files are left to them. */
    int orientation = 1, seen = 0;
    for (unsigned i = 0; i < entries; i++) {
        const unsigned char *e = t + ifd0 + 2 + (size_t)i * 12;
        unsigned tag = image_jpeg_u16(e, be);
        /* A pointer to another IFD or the thumbnail past the block: libexif
         * 0.6.24 stops reading IFD0 there (later versions skip the entry). */
        if ((tag == 0x8769 || tag == 0x8825 || tag == 0xA005 || tag == 0x0201 || tag == 0x0202) &&
            image_jpeg_u32(e + 8, be) >= tn)
            return 0;
        if (tag != 0x0112)
            continue;
        if (seen++ || image_jpeg_u16(e + 2, be) != 3 || image_jpeg_u32(e + 4, be) != 1)
            return 0;
        orientation = (int)image_jpeg_u16(e + 8, be);
        if (orientation < 1 || orientation > 8)
            return 0;
    }
    return orientation;
}

/* 0: the header is read and the file is for this path; -1: it is not. */
static int image_jpeg_header(image_jpeg *j, const unsigned char *p, size_t len) {
    if (setjmp(j->e.jb))
        return -1;
    jpeg_create_decompress(&j->d);
    j->created = 1;
    jpeg_mem_src(&j->d, p, (unsigned long)len);
    jpeg_save_markers(&j->d, JPEG_APP0 + 1, 0xFFFF);
    if (jpeg_read_header(&j->d, TRUE) != JPEG_HEADER_OK || j->d.num_components != 3 ||
        j->d.jpeg_color_space != JCS_YCbCr || j->d.data_precision != 8)
        return -1;
    /* libvips takes an APP1 that starts "Exif" as the image's Exif and
     * libexif reads its orientation. One such segment that
     * image_jpeg_exif_orientation reads without doubt: its orientation is
     * ours to apply (after the resize, as libvips' path does). Two, or one
     * in doubt: the file is libvips'. */
    int exif = 0;
    j->orientation = 1;
    for (jpeg_saved_marker_ptr m = j->d.marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 4 && !memcmp(m->data, "Exif", 4)) {
            if (exif++ || !(j->orientation = image_jpeg_exif_orientation(m->data, m->data_length)))
                return -1;
        }
    j->d.out_color_space = JCS_RGB;
    return 0;
}

image_jpeg *image_jpeg_open(const void *buf, size_t len, int *width, int *height,
                            int *orientation) {
    const unsigned char *p = buf;
    if (!p || len < 4 || len > ULONG_MAX || p[0] != 0xFF || p[1] != 0xD8 || p[2] != 0xFF)
        return NULL;
    image_jpeg *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->d.err = jpeg_std_error(&j->e.pub);
    j->e.pub.error_exit = image_jpeg_on_error;
    j->e.pub.emit_message = image_jpeg_on_message;
    j->e.pub.output_message = image_jpeg_on_output;
    if (image_jpeg_header(j, p, len)) {
        image_jpeg_close(j);
        return NULL;
    }
    *width = (int)j->d.image_width;
    *height = (int)j->d.image_height;
    *orientation = j->orientation;
    return j;
}

int image_jpeg_rows(image_jpeg *j, bn_resampler *rs) {
    JSAMPROW row[IMAGE_JPEG_ROWS];
    if (setjmp(j->e.jb))
        return -1;
    jpeg_start_decompress(&j->d);
    size_t line = (size_t)j->d.output_width * (size_t)j->d.output_components;
    if (j->d.output_components != 3 || !(j->rows = malloc(line * IMAGE_JPEG_ROWS)))
        return -1;
    for (int i = 0; i < IMAGE_JPEG_ROWS; i++)
        row[i] = j->rows + line * (size_t)i;
    while (j->d.output_scanline < j->d.output_height) {
        JDIMENSION got = jpeg_read_scanlines(&j->d, row, IMAGE_JPEG_ROWS);
        if (got == 0) /* cannot happen with a memory source; never loop on it */
            return -1;
        for (JDIMENSION i = 0; i < got; i++)
            bn_resampler_push(rs, row[i]);
    }
    jpeg_finish_decompress(&j->d);
    return 0;
}
