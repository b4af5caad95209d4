/* png.c - one PNG file decoded by libpng into the packer's (C, H, W) uint8
 * layout. Every PNG colour type is read: grey and RGB as they are, palette
 * expanded to RGB, 1/2/4-bit grey widened to 8 bits, 16-bit samples scaled
 * to 8 (round(v * 255 / 65535)); alpha (grey+alpha, RGBA, a tRNS chunk) is
 * dropped, as torchvision's default loader does (PIL's convert("RGB")), and
 * gamma/colour chunks are ignored (the sample values are taken as they are).
 * libpng reports errors by longjmp: see png_decode_jmp. */
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "shard_internal.h"

/* Ancillary chunks (text, ICC profiles) may not make libpng allocate more. */
#define PNG_CHUNK_MAX ((size_t)8 << 20)

/* What the decode shares with libpng's callbacks, and everything it has
 * allocated. It lives in the caller of the function that calls setjmp, so
 * nothing the longjmp path reads is a local changed after setjmp (C11
 * 7.13.2.1 leaves those indeterminate unless volatile). */
typedef struct {
    FILE *f;
    char msg[200];      /* libpng's last error */
    uint8_t *rows;      /* (H, W, C) interleaved, as libpng hands it out */
    png_bytep *ptrs;    /* (H) row pointers into rows */
    uint32_t h, w, c;
} png_ctx;

static void png_read_cb(png_structp png, png_bytep data, size_t n) {
    png_ctx *x = png_get_io_ptr(png);
    if (fread(data, 1, n, x->f) != n)
        png_error(png, ferror(x->f) ? "read error" : "truncated: the file ends inside the image");
}

static void png_error_cb(png_structp png, png_const_charp msg) {
    png_ctx *x = png_get_error_ptr(png);
    snprintf(x->msg, sizeof x->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* Warnings (an odd sRGB profile, a bad ancillary CRC libpng skips) are not
 * ours to print: the pixels are sound or an error comes. */
static void png_warn_cb(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

/* Asks libpng for 8-bit grey or RGB whatever the file holds. */
static void png_set_8bit(png_structp png, png_infop info) {
    int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_scale_16(png);
    /* palette_to_rgb also turns a tRNS chunk into alpha: strip that too */
    if ((type & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_strip_alpha(png);
    png_set_interlace_handling(png); /* Adam7: libpng assembles the passes */
    png_read_update_info(png, info);
}

/* The part that runs under setjmp: 0, or -1 with x->msg (its own checks
 * too: sizes past our limits). */
static int png_decode_jmp(png_structp png, png_infop info, png_ctx *x) {
    if (setjmp(png_jmpbuf(png))) return -1;
    png_set_read_fn(png, x, png_read_cb);
    png_set_sig_bytes(png, 8);
    png_set_chunk_malloc_max(png, PNG_CHUNK_MAX);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE); /* past the door */
#endif
    png_read_info(png, info);
    x->w = png_get_image_width(png, info);
    x->h = png_get_image_height(png, info);
    if (x->w > SHARD_MAX_SIDE || x->h > SHARD_MAX_SIDE) {
        snprintf(x->msg, sizeof x->msg, "%ux%u (height x width): a side is over %u", x->h, x->w,
                 SHARD_MAX_SIDE);
        return -1;
    }
    png_set_8bit(png, info);
    x->c = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    SHARD_ASSERT((x->c == 1 || x->c == 3) && rowbytes == (size_t)x->w * x->c);
    if ((uint64_t)rowbytes * x->h > SHARD_MAX_RECORD_BYTES) {
        snprintf(x->msg, sizeof x->msg, "%ux%ux%u is over the %llu-byte record limit", x->h, x->w,
                 x->c, (unsigned long long)SHARD_MAX_RECORD_BYTES);
        return -1;
    }
    x->rows = shard_xmalloc(rowbytes * x->h);
    x->ptrs = shard_xmalloc(x->h * sizeof *x->ptrs);
    for (uint32_t y = 0; y < x->h; y++) x->ptrs[y] = x->rows + (size_t)y * rowbytes;
    png_read_image(png, x->ptrs);
    png_read_end(png, NULL); /* the chunks after the pixels: a cut or damaged IEND */
    return 0;
}

int shard_png_decode(FILE *f, const char *path, shard_pic *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    uint8_t sig[8];
    size_t got = fread(sig, 1, sizeof sig, f);
    if (got < sizeof sig || png_sig_cmp(sig, 0, sizeof sig)) {
        int jpeg = got >= 3 && sig[0] == 0xff && sig[1] == 0xd8 && sig[2] == 0xff;
        shard_err(err, errlen, "%s: offset 0: not a PNG file (no PNG signature%s)", path,
                  jpeg ? "; it is a JPEG, which pack does not read" : "");
        return -1;
    }
    png_ctx x;
    memset(&x, 0, sizeof x);
    x.f = f;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &x, png_error_cb, png_warn_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = info ? png_decode_jmp(png, info, &x) : -1;
    if (!info) snprintf(x.msg, sizeof x.msg, "out of memory in libpng");
    png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
    free(x.ptrs);
    if (rc) {
        free(x.rows);
        shard_err(err, errlen, "%s: bad PNG: %s", path, x.msg);
        return -1;
    }
    /* interleaved (H, W, C) to planar (C, H, W) */
    size_t plane = (size_t)x.h * x.w;
    out->pixels = shard_xmalloc(plane * x.c);
    for (size_t p = 0; p < plane; p++)
        for (uint32_t ch = 0; ch < x.c; ch++) out->pixels[ch * plane + p] = x.rows[p * x.c + ch];
    free(x.rows);
    out->height = x.h;
    out->width = x.w;
    out->channels = x.c;
    return 0;
}

void shard_pic_convert(shard_pic *p, uint32_t channels) {
    if (!channels || channels == p->channels) return;
    SHARD_ASSERT((channels == 1 || channels == 3) && (p->channels == 1 || p->channels == 3));
    size_t plane = (size_t)p->height * p->width;
    uint8_t *out = shard_xmalloc(plane * channels);
    if (channels == 3) { /* grey replicated */
        for (int ch = 0; ch < 3; ch++) memcpy(out + ch * plane, p->pixels, plane);
    } else { /* luma, ITU-R 601 (as trainer/augment.c): 0.299 R + 0.587 G + 0.114 B, rounded */
        const uint8_t *r = p->pixels, *g = r + plane, *b = g + plane;
        for (size_t i = 0; i < plane; i++)
            out[i] = (uint8_t)((299u * r[i] + 587u * g[i] + 114u * b[i] + 500u) / 1000u);
    }
    free(p->pixels);
    p->pixels = out;
    p->channels = channels;
}
