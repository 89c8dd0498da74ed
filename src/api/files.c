/* files.c — the public file API an application needs beyond the models (latup.h): one tensor
 * reader for every input kind (told by content, the file read once), sets of outputs committed
 * together, checkpoint summaries, caller-raised errors and the version. Thin wrappers over the
 * readers and writers in src/io. */
#define _XOPEN_SOURCE 700
#include "common.h"
#include "io/checkpoint.h"
#include "io/fileio.h"
#include "io/npy.h"
#include "io/png.h"
#include "io/weights.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *latup_version(void) { return LATUP_VERSION_STRING; }

latup_status latup_set_error(latup_status st, const char *fmt, ...) {
    LATUP_NEED(fmt);
    if ((int)st < (int)LATUP_OK || (int)st > (int)LATUP_E_CANCELLED)
        return latup_fail(LATUP_E_USAGE, "latup_set_error: status %d is not a latup_status (0 to %d)", (int)st,
                          (int)LATUP_E_CANCELLED);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return latup_fail(st, "%s", msg);
}

/* ---- tensors from files ------------------------------------------------------------------------ */

/* A safetensors latent: the named tensor, ComfyUI's latent_tensor, or the only tensor. */
static latup_status pick_safetensors(const uint8_t *buf, size_t len, const char *path, const char *key,
                                     latup_tensor *t) {
    latup_weights w;
    TRY(latup_safetensors_parse(buf, len, path, &w));
    const latup_wtensor *wt = NULL;
    float mul = 1.0f;
    latup_status st = LATUP_OK;
    if (key) {
        if (!(wt = latup_weights_find(&w, key)))
            st = latup_fail(LATUP_E_INPUT, "%s: no tensor '%s' (the file holds %d tensors, e.g. '%s')", path, key, w.n,
                            w.n ? w.t[0].name : "none");
    } else if ((wt = latup_weights_find(&w, "latent_tensor"))) {
        /* ComfyUI's LoadLatent: files saved before the version marker hold latents x 0.18215 */
        if (!latup_weights_find(&w, "latent_format_version_0")) mul = (float)(1.0 / 0.18215);
    } else if (w.n == 1) {
        wt = &w.t[0];
    } else {
        st = latup_fail(LATUP_E_INPUT,
                        "%s: a safetensors input holds %d tensors and no 'latent_tensor': name one with --in-key", path,
                        w.n);
    }
    if (!st && !wt->f32)
        st = latup_fail(LATUP_E_INPUT, "%s: tensor '%s' is %s, not a float tensor", path, wt->name,
                        latup_dtype_name(wt->dtype));
    if (!st && (wt->ndim < 1 || wt->ndim > LATUP_MAX_DIMS))
        st = latup_fail(LATUP_E_INPUT, "%s: tensor '%s' has %d dimensions (latup reads 1 to %d)", path, wt->name,
                        wt->ndim, LATUP_MAX_DIMS);
    if (!st && !(st = latup_tensor_alloc(t, wt->ndim, wt->shape))) {
        for (int64_t i = 0; i < wt->numel; i++) t->data[i] = wt->f32[i] * mul;
    }
    latup_weights_free(&w);
    return st;
}

latup_status latup_tensor_read(const char *path, const char *key, latup_tensor *t, latup_file_kind *kind) {
    if (kind) *kind = 0;
    LATUP_NEED(t);
    memset(t, 0, sizeof *t);
    LATUP_NEED(path);
    latup_file_kind k = 0;
    /* opened once ("-" is stdin), the format sniffed from its first bytes, a stream read no
     * further than its header says the file holds */
    static const latup_file_format *const fmts[3] = {&latup_npy_format, &latup_png_format, &latup_safetensors_format};
    latup_input in;
    TRY(latup_input_open(&in, path, fmts, 3, "a .npy, PNG or safetensors file", 0));
    latup_status st;
    if (in.format == &latup_npy_format) {
        k = LATUP_FILE_NPY;
        st = latup_npy_parse(in.data, in.len, path, t);
    } else if (in.format == &latup_png_format) {
        k = LATUP_FILE_PNG;
        st = latup_png_parse(in.data, in.len, path, t);
    } else {
        k = LATUP_FILE_SAFETENSORS;
        st = pick_safetensors(in.data, in.len, path, key, t);
    }
    latup_input_close(&in);
    if (!st && key && k != LATUP_FILE_SAFETENSORS)
        st = latup_fail(LATUP_E_USAGE, "%s: --in-key names a tensor in a safetensors file; this is a %s", path,
                        k == LATUP_FILE_NPY ? ".npy file" : "PNG");
    if (st) latup_tensor_free(t);
    if (kind) *kind = st ? 0 : k;
    return st;
}

/* ---- outputs committed together ------------------------------------------------------------------ */

typedef struct {
    char *path;           /* destination */
    latup_atomic_file af; /* files: the temporary next to it */
    FILE *held;           /* "-": an anonymous temporary, copied to stdout on commit */
    int committed;        /* renamed into place */
    int listed;           /* during a commit: its entry in the signal list (-1: none) */
    char *kept;           /* during a commit: the file it replaces, under a second name (NULL: none) */
    int kept_listed;      /* that name's entry in the signal list, which puts it back (-1: none) */
} out_entry;

/* A set is open until its commit: committed when every file is in place, aborted when the commit
 * failed and took back what it had renamed. Only an open set takes outputs or a commit, so no
 * call after the commit can touch what it wrote. */
typedef enum { SET_OPEN = 0, SET_COMMITTED, SET_ABORTED } set_state;

struct latup_outputs {
    out_entry *e;
    int n, cap;
    set_state state;
};

static latup_status wrong_state(const latup_outputs *o, const char *func) {
    if (o->state == SET_COMMITTED)
        return latup_fail(LATUP_E_USAGE, "%s: the output set is already committed: its files are in place; "
                                         "put further outputs in a new set", func);
    return latup_fail(LATUP_E_USAGE, "%s: the output set is aborted: its commit failed and removed its outputs; "
                                     "start a new set", func);
}

latup_status latup_output_check(const char *path) {
    LATUP_NEED(path);
    if (!path[0]) return latup_fail(LATUP_E_USAGE, "latup_output_check: the output path is empty");
    if (!strcmp(path, "-")) return LATUP_OK;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return latup_fail(LATUP_E_IO, "%s: is a directory (give a file name)", path);
    latup_atomic_file af;
    TRY(latup_atomic_open(&af, path));
    latup_atomic_abort(&af);
    return LATUP_OK;
}

latup_status latup_outputs_new(latup_outputs **o) {
    LATUP_NEED(o);
    *o = latup_calloc(1, sizeof **o, "an output set");
    return *o ? LATUP_OK : LATUP_E_NOMEM;
}

/* dir/name with the directory resolved, so "a/x.png" and "./a/x.png" are the same output. */
static char *canonical(const char *path) {
    char *d = strdup(path), *b = strdup(path), real[PATH_MAX], *out = NULL;
    if (d && b && realpath(dirname(d), real)) {
        const char *base = basename(b);
        size_t n = strlen(real) + strlen(base) + 2;
        if ((out = malloc(n))) snprintf(out, n, "%s/%s", real, base);
    }
    if (!out && path) out = strdup(path);
    free(d);
    free(b);
    return out;
}

/* How one output is encoded: png (NULL for .npy) holds a PNG's settings. */
typedef struct {
    latup_png_map map;
    int bits;
    const latup_png_text *text;
    int n_text;
} png_settings;

static latup_status encode(FILE *f, const char *path, const latup_tensor *t, const png_settings *png) {
    return png ? latup_png_encode(f, path, t, png->map, png->bits, png->text, png->n_text)
               : latup_npy_encode(f, path, t);
}

/* The arguments every add checks, in the order the contract gives (latup.h, "arguments"). */
static latup_status add_args(const latup_outputs *o, const char *path, const latup_tensor *t, const char *func,
                             const char *t_name) {
    if (!o) return latup_null_arg(func, "o");
    if (!path) return latup_null_arg(func, "path");
    TRY(latup_tensor_check(t, func, t_name, 1));
    if (o->state != SET_OPEN) return wrong_state(o, func);
    if (!path[0]) return latup_fail(LATUP_E_USAGE, "%s: the output path is empty", func);
    return LATUP_OK;
}

static latup_status add(latup_outputs *o, const char *path, const latup_tensor *t, const png_settings *png) {
    const int to_stdout = !strcmp(path, "-");
    char *canon = to_stdout ? strdup("-") : canonical(path);
    if (!canon) return latup_fail(LATUP_E_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->e[i].path, canon) || (to_stdout && o->e[i].held)) {
            free(canon);
            return latup_fail(LATUP_E_USAGE, "%s: two outputs of one command go to this file", path);
        }
    if (o->n == o->cap) {
        int ncap = o->cap ? 2 * o->cap : 8;
        out_entry *ne = realloc(o->e, (size_t)ncap * sizeof *ne);
        if (!ne) {
            free(canon);
            return latup_fail(LATUP_E_NOMEM, "out of memory growing an output set");
        }
        o->e = ne, o->cap = ncap;
    }
    out_entry *e = &o->e[o->n];
    memset(e, 0, sizeof *e);
    e->path = canon;
    e->listed = e->kept_listed = -1;
    latup_status st;
    if (to_stdout) {
        e->held = tmpfile();
        st = e->held ? encode(e->held, "<stdout>", t, png)
                     : latup_fail(LATUP_E_IO, "<stdout>: cannot create a temporary file: %s", strerror(errno));
        if (st && e->held) fclose(e->held);
    } else {
        if (!(st = latup_atomic_open(&e->af, path))) {
            st = encode(e->af.f, path, t, png);
            if (st) latup_atomic_abort(&e->af);
        }
    }
    if (st) {
        free(canon);
        return st;
    }
    o->n++;
    return LATUP_OK;
}

latup_status latup_outputs_add_npy(latup_outputs *o, const char *path, const latup_tensor *t) {
    TRY(add_args(o, path, t, __func__, "t"));
    return add(o, path, t, NULL);
}

static latup_status add_png(latup_outputs *o, const char *path, const latup_tensor *img, latup_pixel_range range,
                            int bits, const latup_png_text *text, int n_text, const char *func) {
    TRY(add_args(o, path, img, func, "img"));
    if (range != LATUP_PIXELS_UNIT && range != LATUP_PIXELS_SIGNED)
        return latup_fail(LATUP_E_USAGE, "%s: range %d is not a latup_pixel_range (LATUP_PIXELS_UNIT or "
                                         "LATUP_PIXELS_SIGNED)", func, (int)range);
    if (bits != 8 && bits != 16)
        return latup_fail(LATUP_E_USAGE, "%s: bits %d: a PNG is written with 8 or 16 bits per sample", func, bits);
    TRY(latup_png_text_check(text, n_text, func));
    const png_settings png = {latup_png_map_for(range), bits, text, n_text};
    return add(o, path, img, &png);
}

latup_status latup_outputs_add_png(latup_outputs *o, const char *path, const latup_tensor *img,
                                   latup_pixel_range range, int bits) {
    return add_png(o, path, img, range, bits, NULL, 0, __func__);
}

latup_status latup_outputs_add_png_text(latup_outputs *o, const char *path, const latup_tensor *img,
                                        latup_pixel_range range, int bits, const latup_png_text *text, int n_text) {
    return add_png(o, path, img, range, bits, text, n_text, __func__);
}

static latup_status copy_to_stdout(FILE *held) {
    char buf[1 << 16];
    size_t n;
    if (fflush(held) != 0 || fseek(held, 0, SEEK_SET) != 0)
        return latup_fail(LATUP_E_IO, "<stdout>: temporary file: %s", strerror(errno));
    while ((n = fread(buf, 1, sizeof buf, held)) > 0)
        if (fwrite(buf, 1, n, stdout) != n) return latup_fail(LATUP_E_IO, "<stdout>: write failed: %s", strerror(errno));
    if (ferror(held) || fflush(stdout) != 0)
        return latup_fail(LATUP_E_IO, "<stdout>: write failed: %s", strerror(errno));
    return LATUP_OK;
}

/* Takes back what a failed commit did to e: the file it replaced put back (or, if none, its own
 * file removed), its temporary removed if it never got there. A file that cannot be put back
 * stays under its second name, and the status says where. */
static latup_status take_back(out_entry *e, latup_status st) {
    if (e->kept) {
        if (latup_kept_restore(e->kept, e->path) != 0)
            st = latup_fail(LATUP_E_IO, "%s: the outputs were taken back, but the file this one replaced could not be "
                            "put back (%s): it is kept as %s", e->path, strerror(errno), e->kept);
    } else if (e->committed) {
        unlink(e->path);
    }
    e->committed = 0;
    if (!e->held) latup_atomic_abort(&e->af); /* never reached: its temporary (a no-op after a commit) */
    return st;
}

latup_status latup_outputs_commit(latup_outputs *o) {
    LATUP_NEED(o);
    if (o->state != SET_OPEN) return wrong_state(o, __func__);
    latup_status st = LATUP_OK;
    /* All or none, and the files the set replaces are not lost when it is none: each file a rename
     * will replace, but the last's (after it nothing can fail), first gets a second name. */
    int last = -1;
    for (int i = 0; i < o->n; i++)
        if (!o->e[i].held) last = i;
    for (int i = 0; i < last && !st; i++)
        if (!o->e[i].held) st = latup_keep_existing(o->e[i].path, &o->e[i].kept, &o->e[i].kept_listed);
    /* Each file renamed stays on the signal list until all are in place: a signal in between takes
     * it back, as a failure does (a file it replaced is put back by the entry of its second name,
     * its own file removed by the entry that listed its temporary). */
    for (int i = 0; i < o->n && !st; i++) {
        out_entry *e = &o->e[i];
        if (e->held) continue;
        /* fsync, rename; removes its temporary on failure */
        st = e->kept ? latup_atomic_commit(&e->af) : latup_atomic_commit_held(&e->af, &e->listed);
        e->committed = st == LATUP_OK;
    }
    for (int k = 0; k < o->n; k++) {
        out_entry *e = &o->e[k];
        if (st) st = take_back(e, st);
        else if (e->kept) unlink(e->kept); /* in place: the replaced file's second name goes */
        latup_signal_forget(e->listed);
        latup_signal_forget(e->kept_listed);
        free(e->kept);
        e->kept = NULL, e->listed = e->kept_listed = -1;
    }
    if (st) {
        o->state = SET_ABORTED;
        return st;
    }
    o->state = SET_COMMITTED; /* the files are in place, whatever stdout does */
    for (int i = 0; i < o->n && !st; i++)
        if (o->e[i].held) st = copy_to_stdout(o->e[i].held);
    return st;
}

void latup_outputs_free(latup_outputs *o) {
    if (!o) return;
    for (int i = 0; i < o->n; i++) {
        out_entry *e = &o->e[i];
        if (e->held) fclose(e->held);
        else if (!e->committed) latup_atomic_abort(&e->af); /* committed files stay */
        free(e->path);
    }
    free(o->e);
    free(o);
}

/* ---- checkpoints ----------------------------------------------------------------------------------- */

latup_status latup_checkpoint_info_read(const char *path, latup_checkpoint_info *ci) {
    LATUP_NEED(ci);
    memset(ci, 0, sizeof *ci);
    LATUP_NEED(path);
    latup_weights w;
    TRY(latup_weights_load(path, &w));
    snprintf(ci->format, sizeof ci->format, "%s", w.format ? w.format : "?");
    snprintf(ci->wrapper, sizeof ci->wrapper, "%s", w.wrapper ? w.wrapper : "");
    ci->n_tensors = w.n;
    for (int i = 0; i < w.n; i++) {
        const latup_wtensor *t = &w.t[i];
        ci->n_f32 += t->dtype == LATUP_DT_F32;
        ci->n_f16 += t->dtype == LATUP_DT_F16;
        ci->n_bf16 += t->dtype == LATUP_DT_BF16;
        ci->n_i64 += t->dtype == LATUP_DT_I64;
        ci->n_elements += t->numel;
    }
    ci->has_latent = latup_weights_find(&w, "latent_tensor") != NULL;
    latup_weights_free(&w);
    return LATUP_OK;
}
