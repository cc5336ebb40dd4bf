/*
 * fuzz_exif.c: libFuzzer harness for the direct JPEG path's Exif reader
 * (image_jpeg_exif_orientation, common/image_jpeg.c): the input is an APP1
 * payload ("Exif\0\0" and a TIFF structure, or anything). The reader may
 * decline (0) whatever it likes; when it answers an orientation, libexif,
 * loaded as libvips loads it (the specification's fixes off, then
 * exif_data_fix), must read the same from IFD0: an Orientation entry, one
 * SHORT of that value, or none for 1. A disagreement would give a photo
 * another orientation than libvips gives it, so it aborts.
 */
#include "fuzz.h"
#include "image_jpeg.h"

#include <libexif/exif-data.h>

/* The orientation libvips would take from block b: -1 when libexif's IFD0
 * has an Orientation entry this check does not model (another format or
 * count): the reader must then have declined. */
static int libexif_orientation(const uint8_t *b, size_t n) {
    ExifData *ed = exif_data_new();
    if (!ed)
        abort();
    exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_load_data(ed, b, (unsigned)n);
    exif_data_fix(ed);
    int o = 1;
    ExifEntry *e = exif_content_get_entry(ed->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
    if (e) {
        if (e->format == EXIF_FORMAT_SHORT && e->components == 1 && e->size >= 2)
            o = exif_get_short(e->data, exif_data_get_byte_order(ed));
        else
            o = -1;
    }
    exif_data_unref(ed);
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65533) /* an APP1 segment's payload is at most that */
        return 0;
    int o = image_jpeg_exif_orientation(data, size);
    if (o < 0 || o > 8)
        abort();
    if (o == 0)
        return 0;
    int want = libexif_orientation(data, size);
    if (want != o) {
        fprintf(stderr, "fuzz_exif: the reader says orientation %d, libexif %d\n", o, want);
        abort();
    }
    return 0;
}
