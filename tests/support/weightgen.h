/* weightgen.h — the C twin of tools/reference/weightgen.py: "latup weight generator v1" (splitmix64 per
 * tensor, integer levels, every LUA and VAE tensor kind) and "latup input generator v1", so tests
 * can rebuild models at the released widths from a golden file's metadata instead of storing
 * them. Header-only, for tests and tools/bench/bench_cuda.c; the including file defines
 * _POSIX_C_SOURCE 200809L first (mkstemp). */
#ifndef LATUP_WEIGHTGEN_H
#define LATUP_WEIGHTGEN_H

#include "io/json.h"
#include "io/weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline uint64_t wg_fnv1a64(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static inline int wg_ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

/* The next value of the splitmix64 stream whose state is *s. */
static inline uint64_t wg_splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* n levels k in [-L, L] of the stream seeded fnv1a64(name) ^ G, mapped to off + k * 2^-e. */
static inline void wg_levels(float *out, int64_t n, const char *name, uint64_t G, int L, int e, float off) {
    uint64_t s = wg_fnv1a64(name) ^ G;
    for (int64_t i = 0; i < n; i++) {
        const int64_t k = (int64_t)((wg_splitmix64(&s) >> 11) % (uint64_t)(2 * L + 1)) - L;
        out[i] = off + ldexpf((float)k, -e);
    }
}

/* One weight tensor by the rules of tools/reference/weightgen.py. */
static inline void wg_weight(float *out, const char *name, int ndim, const int64_t *shape, uint64_t G, int Lw) {
    int64_t n = 1, fan_in = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    for (int d = 1; d < ndim; d++) fan_in *= shape[d];
    if (wg_ends_with(name, ".bias")) {
        wg_levels(out, n, name, G, 6, 6, 0.0f);
    } else if (wg_ends_with(name, "relative_position_bias_table")) {
        wg_levels(out, n, name, G, 16, 3, 0.0f);
    } else if (ndim == 1) {
        wg_levels(out, n, name, G, 6, 5, 1.0f);
    } else {
        int e = 0;
        while (6.0 * ldexp(1.0, 2 * e) < (double)Lw * (Lw + 1) * (double)fan_in) e++;
        wg_levels(out, n, name, G, Lw, e, 0.0f);
    }
}

/* "latup input generator v1": k / 512 for k in [-1024, 1024]. */
static inline void wg_input(float *out, int64_t n, const char *name, uint64_t G) {
    wg_levels(out, n, name, G, 1024, 9, 0.0f);
}

/* A JSON number as double. */
static inline double wg_num(const latup_json *j) { return j->type == LATUP_JSON_INT ? (double)j->u.i : j->u.d; }

/* Checks data against a checksum [shape, sum, first values] (tools/reference/vae_ref.py checksum()). */
static inline int wg_checksum_ok(const float *data, int64_t n, const latup_json *ck, const char *what) {
    const latup_json *shape = ck->u.kids.first, *sum = shape->next, *first = sum->next;
    (void)shape;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += data[i];
    int ok = s == wg_num(sum);
    int i = 0;
    for (const latup_json *f = first->u.kids.first; f && i < n; f = f->next, i++) ok = ok && data[i] == (float)wg_num(f);
    if (!ok) printf("generator mismatch: %s sum %.17g, expected %.17g\n", what, s, wg_num(sum));
    return ok;
}

/* Builds every tensor named in the golden file's "weights_checksums" metadata from the generator
 * (seed "seed" or `seed_key`, levels "weights_Lw"), checks each against its checksum and writes
 * them (F32) to path. Returns the number of tensors, or -1 on a mismatch. */
static inline int wg_write_generated(const latup_weights *g, const char *seed_key, const char *path) {
    const char *ck = latup_weights_meta(g, "weights_checksums");
    const char *seed = latup_weights_meta(g, seed_key), *lw = latup_weights_meta(g, "weights_Lw");
    if (!ck || !seed || !lw) return -1;
    latup_json_doc doc;
    if (latup_json_parse(ck, strlen(ck), 1u << 24, &doc) != LATUP_OK) return -1;
    const latup_json *root = doc.root;
    latup_weights w = {0};
    w.t = calloc(root->u.kids.n, sizeof *w.t);
    size_t total = 0;
    for (const latup_json *e = root->u.kids.first; e; e = e->next) {
        size_t n = 1;
        for (const latup_json *d = e->u.kids.first->u.kids.first; d; d = d->next) n *= (size_t)d->u.i;
        total += n;
    }
    float *blob = malloc(total * sizeof(float));
    w.blob = blob;
    int bad = 0;
    for (const latup_json *e = root->u.kids.first; e; e = e->next, w.n++) {
        latup_wtensor *t = &w.t[w.n];
        t->name = strdup(e->key);
        t->dtype = LATUP_DT_F32;
        t->numel = 1;
        for (const latup_json *d = e->u.kids.first->u.kids.first; d; d = d->next)
            t->shape[t->ndim++] = d->u.i, t->numel *= d->u.i;
        t->f32 = blob;
        blob += t->numel;
        wg_weight(t->f32, t->name, t->ndim, t->shape, (uint64_t)strtoull(seed, NULL, 10), atoi(lw));
        bad += !wg_checksum_ok(t->f32, t->numel, e, t->name);
    }
    const int n = w.n;
    printf("generated %d tensors (%zu values) from the golden file's generator spec; %s\n", n, total,
           bad ? "CHECKSUMS DIFFER" : "sums and first values match");
    latup_status st = bad ? LATUP_E_INTERNAL : latup_safetensors_write(path, &w);
    latup_json_free(&doc);
    latup_weights_free(&w);
    return st == LATUP_OK ? n : -1;
}

/* Makes a fresh empty file in $TMPDIR (default /tmp); path[] (n bytes) receives its name. 0 on
 * success. */
static inline int wg_tmpfile(char *path, size_t n) {
    const char *dir = getenv("TMPDIR");
    if ((size_t)snprintf(path, n, "%s/latup_gen_XXXXXX", dir && *dir ? dir : "/tmp") >= n) return -1;
    const int fd = mkstemp(path);
    return fd < 0 ? -1 : close(fd);
}

/* The model that the golden file at golden_path describes (wg_write_generated, seed "seed"),
 * written to a fresh file in $TMPDIR whose name path[] (n bytes) receives; the caller unlinks it.
 * Returns the number of tensors, or -1 (with a line on stdout, and no file left) when the golden
 * file cannot be read, a checksum differs or the file cannot be written. */
static inline int wg_generate_tmp(const char *golden_path, char *path, size_t n) {
    latup_weights g = {0};
    if (latup_safetensors_load(golden_path, &g) != LATUP_OK) {
        printf("wg_generate_tmp: %s\n", latup_last_error());
        return -1;
    }
    int rc = -1;
    if (wg_tmpfile(path, n) != 0) {
        printf("wg_generate_tmp: no temporary file for %s\n", golden_path);
    } else if ((rc = wg_write_generated(&g, "seed", path)) < 0) {
        printf("wg_generate_tmp: %s: the generated weights were not written\n", golden_path);
        unlink(path);
    }
    latup_weights_free(&g);
    return rc;
}

#endif
