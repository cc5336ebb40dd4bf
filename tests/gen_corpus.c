/*
 * gen_corpus.c: writes the bad-input corpus that tests/reliability_inputs.sh
 * feeds to bottleneck-extract. Generated, not checked in: every file is
 * made here from one real photo, with libvips and a few hand-built headers.
 *
 *   gen_corpus DIR PHOTO.jpg
 *
 * DIR gets three class folders, so the test can say what must happen to each
 * file by its label alone:
 *
 *   DIR/good/    must be decoded and stored: odd formats (CMYK, 16-bit,
 *                grey, grey+alpha, palette, RGBA, animated GIF, multi-page
 *                TIFF, WebP, PPM), odd sizes (1x1, 10000x10, 10x10000,
 *                8000x6000), odd names (spaces, quotes, a newline, a tab,
 *                invalid UTF-8, ...), a folder named like an image, a
 *                symlink to a file and symlink loops (to the folder itself
 *                and to its parent) that must not be followed forever;
 *   DIR/bad/     must be recorded in failures: empty, truncated and header-
 *                only files, text and random bytes under image extensions,
 *                decompression bombs (hand-built PNG headers with correct
 *                CRCs), a PNG with a broken CRC, a dangling symlink, a link
 *                to itself, a FIFO and a character device;
 *   DIR/either/  may go either way, but must go one way: a JPEG with
 *                garbage in its entropy-coded data (libjpeg only warns),
 *                a BMP (libvips reads it only through ImageMagick, which
 *                bottleneck blocks).
 *
 * Prints "good N", "bad N", "either N": the files the scan should find in
 * each folder.
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

static const char *root;
static int counts[3]; /* good, bad, either */

static void die(const char *what) {
    fprintf(stderr, "gen_corpus: %s: %s\n", what, vips_error_buffer());
    exit(1);
}

static void die_errno(const char *what, const char *path) {
    fprintf(stderr, "gen_corpus: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

/* DIR/<cls>/<name>, counted in its class. */
static const char *path_of(int cls, const char *name) {
    static const char *const dirs[3] = {"good", "bad", "either"};
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s/%s", root, dirs[cls], name);
    counts[cls]++;
    return buf;
}

static void write_bytes(int cls, const char *name, const void *p, size_t n) {
    const char *path = path_of(cls, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0)
        die_errno("cannot write", path);
}

/* Save im with libvips' saver for name's extension, plus options. */
#define SAVE(cls, name, im, ...)                                                                   \
    do {                                                                                           \
        if (vips_image_write_to_file(im, path_of(cls, name), __VA_ARGS__))                         \
            die(name);                                                                             \
    } while (0)

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        die_errno("cannot read", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n + 1);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n)
        die_errno("cannot read", path);
    fclose(f);
    *len = (size_t)n;
    return p;
}

/* A crop of the photo, so every name variant has its own content (and is
 * decoded, not reused by hash). */
static VipsImage *crop(VipsImage *photo, int i) {
    VipsImage *out;
    int w = photo->Xsize * 3 / 4, h = photo->Ysize * 3 / 4; /* i in 0..23 */
    if (vips_crop(photo, &out, i * (photo->Xsize - w) / 24, i * (photo->Ysize - h) / 24, w, h,
                  NULL))
        die("crop");
    return out;
}

static VipsImage *scaled(VipsImage *in, int w, int h) {
    VipsImage *out;
    if (vips_resize(in, &out, (double)w / in->Xsize, "vscale", (double)h / in->Ysize, NULL))
        die("resize");
    return out;
}

static void gen_good(VipsImage *photo, const char *photo_path) {
    size_t len;
    unsigned char *jpg = read_all(photo_path, &len);
    write_bytes(0, "photo.jpg", jpg, len);
    free(jpg);

    VipsImage *small = scaled(photo, 64, 48), *t;

    /* Colour models and depths. */
    if (vips_colourspace(small, &t, VIPS_INTERPRETATION_CMYK, NULL))
        die("cmyk");
    SAVE(0, "cmyk.jpg", t, NULL);
    g_object_unref(t);
    if (vips_colourspace(small, &t, VIPS_INTERPRETATION_B_W, NULL))
        die("grey");
    SAVE(0, "grey.jpg", t, NULL);
    SAVE(0, "grey.png", t, NULL);
    VipsImage *ga;
    if (vips_bandjoin_const1(t, &ga, 128.0, NULL))
        die("grey alpha");
    SAVE(0, "grey_alpha.png", ga, NULL);
    g_object_unref(ga);
    VipsImage *g16;
    if (vips_colourspace(t, &g16, VIPS_INTERPRETATION_GREY16, NULL))
        die("grey16");
    SAVE(0, "grey16.png", g16, NULL);
    g_object_unref(g16);
    g_object_unref(t);
    if (vips_colourspace(small, &t, VIPS_INTERPRETATION_RGB16, NULL))
        die("rgb16");
    SAVE(0, "rgb16.png", t, NULL);
    SAVE(0, "rgb16.tif", t, NULL);
    g_object_unref(t);
    SAVE(0, "palette.png", small, "palette", TRUE, NULL);
    if (vips_bandjoin_const1(small, &t, 200.0, NULL))
        die("rgba");
    SAVE(0, "rgba.png", t, NULL);
    g_object_unref(t);
    SAVE(0, "lossless.webp", small, "lossless", TRUE, NULL);
    SAVE(2, "photo.ppm", small, NULL); /* ppmload is untrusted in libvips 8.14 */

    /* Several frames or pages: only the first is used. */
    VipsImage *pages[3], *strip;
    for (int i = 0; i < 3; i++)
        pages[i] = crop(small, i * 8); /* 48x36 each */
    if (vips_arrayjoin(pages, &strip, 3, "across", 1, NULL))
        die("arrayjoin");
    vips_image_set_int(strip, VIPS_META_PAGE_HEIGHT, pages[0]->Ysize);
    SAVE(0, "animated.gif", strip, NULL);
    SAVE(0, "pages.tif", strip, NULL);
    g_object_unref(strip);
    for (int i = 0; i < 3; i++)
        g_object_unref(pages[i]);

    /* Sizes: smaller than the input, extreme aspect, large. */
    t = scaled(photo, 1, 1);
    SAVE(0, "one.png", t, NULL);
    SAVE(0, "one.jpg", t, NULL);
    g_object_unref(t);
    t = scaled(photo, 10000, 10);
    SAVE(0, "wide.png", t, NULL);
    g_object_unref(t);
    t = scaled(photo, 10, 10000);
    SAVE(0, "tall.jpg", t, NULL);
    g_object_unref(t);
    t = scaled(photo, 8000, 6000);
    SAVE(0, "large.jpg", t, "Q", 50, NULL);
    g_object_unref(t);

    /* Names. */
    static const char *const names[] = {
        "with space.jpg",
        "it's.jpg",
        "say \"cheese\".jpg",
        "new\nline.jpg",
        "tab\there.jpg",
        "back\\slash.jpg",
        "\xff\xfe invalid utf8.jpg",
        "\xc3\xbcn\xc3\xaf"
        "c\xc3\xb6"
        "d\xc3\xa9"
        ".jpg", /* unicode */
        "-dash.jpg",
        "UPPER.JPG",
        "semi;colon';--.jpg",
        "%s%n.jpg",
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        t = crop(photo, (int)i + 1);
        SAVE(0, names[i], t, NULL);
        g_object_unref(t);
    }
    /* A folder named like an image: entered, not read as a file. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/good/folder.jpg", root);
    if (mkdir(dir, 0755) && errno != EEXIST)
        die_errno("mkdir", dir);
    t = crop(photo, 20);
    SAVE(0, "folder.jpg/inside.jpg", t, NULL);
    g_object_unref(t);
    g_object_unref(small);

    /* Links: to a file (same content: its vector is reused), to the folder
     * itself and to its parent (loops the scan must not follow forever). */
    if (symlink("photo.jpg", path_of(0, "link.jpg")))
        die_errno("symlink", "link.jpg");
    char loop[4096];
    snprintf(loop, sizeof loop, "%s/good/loop", root);
    if (symlink(".", loop))
        die_errno("symlink", loop);
    snprintf(loop, sizeof loop, "%s/good/up", root);
    if (symlink("..", loop))
        die_errno("symlink", loop);
}

static void gen_bad(VipsImage *photo, const char *photo_path) {
    size_t len;
    unsigned char *jpg = read_all(photo_path, &len);
    write_bytes(1, "empty.jpg", "", 0);
    write_bytes(1, "empty.png", "", 0);
    write_bytes(1, "truncated.jpg", jpg, len / 2);
    write_bytes(1, "header_only.jpg", jpg, len < 300 ? len / 4 : 300);
    write_bytes(1, "soi_only.jpg", "\xff\xd8", 2);
    free(jpg);

    void *png;
    size_t plen;
    VipsImage *small = scaled(photo, 64, 48);
    if (vips_pngsave_buffer(small, &png, &plen, NULL))
        die("pngsave");
    write_bytes(1, "truncated.png", png, plen / 2);
    write_bytes(1, "signature_only.png", png, 8);
    /* A complete PNG with one flipped bit in the pixel data: the CRC no
     * longer matches. */
    unsigned char *flipped = malloc(plen);
    memcpy(flipped, png, plen);
    unsigned char *idat = memmem(flipped, plen, "IDAT", 4);
    if (!idat)
        die("no IDAT");
    idat[12] ^= 0x10;
    write_bytes(1, "bad_crc.png", flipped, plen);
    free(flipped);
    g_free(png);
    g_object_unref(small);

    const char *text = "This is not an image.\nJust text under an image name.\n";
    write_bytes(1, "text.jpg", text, strlen(text));
    write_bytes(1, "text.png", text, strlen(text));
    write_bytes(1, "text.gif", text, strlen(text));
    static const char *const rnd[] = {"random.jpg", "random.png",  "random.gif",
                                      "random.tif", "random.webp", "random.jpeg"};
    uint32_t s = 2463534242u;
    for (size_t k = 0; k < sizeof rnd / sizeof *rnd; k++) {
        unsigned char noise[8192];
        for (size_t i = 0; i < sizeof noise; i++) {
            s ^= s << 13, s ^= s >> 17, s ^= s << 5;
            noise[i] = (unsigned char)s;
        }
        write_bytes(1, rnd[k], noise, 1000 + 1000 * k);
    }

    /* Decompression bombs: valid headers declaring 10^10 and 2*10^8 pixels. */
    unsigned char bomb[128];
    write_bytes(1, "bomb.png", bomb, support_png_declaring(bomb, 100000, 100000));
    write_bytes(1, "bomb_strip.png", bomb, support_png_declaring(bomb, 1000000, 200));

    /* Gone before it is read, or never readable. */
    if (symlink("does-not-exist.jpg", path_of(1, "dangling.jpg")))
        die_errno("symlink", "dangling.jpg");
    if (symlink("self.jpg", path_of(1, "self.jpg")))
        die_errno("symlink", "self.jpg");
    if (mkfifo(path_of(1, "fifo.jpg"), 0644))
        die_errno("mkfifo", "fifo.jpg");
    if (symlink("/dev/zero", path_of(1, "device.jpg")))
        die_errno("symlink", "device.jpg");
}

static void gen_either(VipsImage *photo) {
    void *buf;
    size_t len;
    VipsImage *small = scaled(photo, 64, 48);
    if (vips_jpegsave_buffer(small, &buf, &len, NULL))
        die("jpegsave");
    /* Overwrite bytes in the middle of the scan data (after the headers). */
    unsigned char *p = buf;
    for (size_t i = len / 2; i < len / 2 + 16 && i + 2 < len; i++)
        p[i] = (unsigned char)(i * 37);
    write_bytes(2, "garbled.jpg", buf, len);
    g_free(buf);
    write_bytes(2, "image.bmp",
                "BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\1\0\0\0\1\0\0\0\1\0\x18\0", 30);
    g_object_unref(small);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: gen_corpus DIR PHOTO.jpg\n");
        return 2;
    }
    if (VIPS_INIT(argv[0]))
        die("vips_init");
    root = argv[1];
    const char *dirs[3] = {"good", "bad", "either"};
    for (int i = 0; i < 3; i++) {
        char d[4096];
        snprintf(d, sizeof d, "%s/%s", root, dirs[i]);
        if (mkdir(root, 0755) && errno != EEXIST)
            die_errno("mkdir", root);
        if (mkdir(d, 0755) && errno != EEXIST)
            die_errno("mkdir", d);
    }
    VipsImage *photo = vips_image_new_from_file(argv[2], "access", VIPS_ACCESS_RANDOM, NULL);
    if (!photo)
        die(argv[2]);
    gen_good(photo, argv[2]);
    gen_bad(photo, argv[2]);
    gen_either(photo);
    g_object_unref(photo);
    printf("good %d\nbad %d\neither %d\n", counts[0], counts[1], counts[2]);
    vips_shutdown();
    return 0;
}
