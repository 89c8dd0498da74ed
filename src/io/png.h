/* png.h — PNG images with zlib only: a strict reader of 8-bit gray, gray+alpha, RGB, RGBA and
 * palette images and 16-bit gray, gray+alpha, RGB and RGBA ones into a float [3,H,W] tensor, and
 * an 8- or 16-bit RGB writer with optional text chunks (atomic: temporary file renamed into place). The float -> sample mapping is a separate, parameterised step, because
 * the callers disagree on it ([0,1] images vs. diffusers' [-1,1] VAE output). The public entry
 * points, latup_png_read and latup_png_write, are declared in latup.h. */
#ifndef LATUP_PNG_H
#define LATUP_PNG_H

#include "common.h"
#include "io/fileio.h"

#include <stdio.h>

/* Limits the reader enforces before allocating (and the writer, so it never writes a file the
 * reader refuses). */
#define LATUP_PNG_MAX_SIDE 65535
#define LATUP_PNG_MAX_PIXELS ((int64_t)1 << 28)

/* Parses a whole PNG file held in buf[0..len) into img, float [3,H,W], each value (float)v / 255
 * of the 8-bit sample v, or (float)v / 65535 of the 16-bit one. Gray is replicated to R, G and B;
 * palette entries are looked up; alpha is dropped (the color samples are taken as they are, not
 * composited onto any background). Refused with LATUP_E_INPUT and a one-line "<path>: <what>"
 * message: anything malformed, bit depths other than 8 and 16, interlaced images. `path` names the source in messages (NULL: "<buffer>"). On failure
 * *img is left empty (data NULL, ndim 0). */
latup_status latup_png_parse(const uint8_t *buf, size_t len, const char *path, latup_tensor *img);
/* The PNG format for latup_input_open (sniffer: the signature; sizer: the chunks up to IEND).
 * latup_png_read (latup.h) reads a file once ("-": stdin, gzip inflated), no further than IEND. */
extern const latup_file_format latup_png_format;

/* How floats become samples: v = round(clamp(x * scale + offset, 0, 1) * maxv), maxv 255 or
 * 65535, computed in float in exactly that order (x * scale, then + offset, then clamp, then
 * * maxv, then round). half_even selects round-half-to-even (numpy's round, which diffusers'
 * numpy_to_pil uses) instead of round-half-away-from-zero (lroundf). NaN and Inf map to 0 and are
 * counted. */
typedef struct {
    float scale, offset;
    int half_even;
} latup_png_map;

/* [0,1] images, lroundf: LATUP_PIXELS_UNIT. */
#define LATUP_PNG_MAP_UNIT ((latup_png_map){1.0f, 0.0f, 0})
/* diffusers' VaeImageProcessor: (x / 2 + 0.5).clamp(0, 1), then (x * 255).round() with numpy:
 * LATUP_PIXELS_SIGNED. */
#define LATUP_PNG_MAP_DIFFUSERS ((latup_png_map){0.5f, 0.5f, 1})
latup_png_map latup_png_map_for(latup_pixel_range range);

/* chw: planar float [3,H,W]; rgb: interleaved bytes [H,W,3]. Returns the number of NaN and Inf
 * inputs. */
size_t latup_png_quantize(uint8_t *rgb, const float *chw, int H, int W, latup_png_map map);

/* rgb: interleaved 8-bit [H,W,3]. Sides 1 to LATUP_PNG_MAX_SIDE, at most LATUP_PNG_MAX_PIXELS. */
latup_status latup_png_write_rgb8(const char *path, const uint8_t *rgb, int H, int W);
/* img: float [3,H,W] or [1,3,H,W], mapped with `map` to `bits` (8 or 16) per sample and encoded
 * into f (`path` names it in messages), with n_text text chunks after IHDR (checked beforehand by
 * latup_png_text_check); an image holding NaN or Inf is refused (LATUP_E_INPUT) before anything
 * is written. */
latup_status latup_png_encode(FILE *f, const char *path, const latup_tensor *img, latup_png_map map, int bits,
                              const latup_png_text *text, int n_text);
/* The rules of latup_png_write_text (latup.h) for text[0..n_text): LATUP_E_USAGE naming func and
 * the entry. */
latup_status latup_png_text_check(const latup_png_text *text, int n_text, const char *func);
/* latup_png_encode into a temporary file renamed onto path. */
latup_status latup_png_write_mapped(const char *path, const latup_tensor *img, latup_png_map map, int bits);

#endif
