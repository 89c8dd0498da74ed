/* encode.c — `latup encode`: images into VAE latents with the encoder of a VAE file, in the order
 * the other commands keep: options, outputs checked, every input read and its range checked, the
 * encoder loaded (the encoder only), every input planned by the library (latup_vae_plan_encode:
 * exact or tiled under --max-memory), then computed, and the latents committed together or none. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "jsonw.h"
#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a declared range lets through beyond its ends: the rounding of values written as floats
 * from 8- or 16-bit pixels (and of 2x - 1 on them), not a second range. */
#define CLI_RANGE_SLACK 1e-3

typedef struct {
    const char *path;
    char stem[256];
    char out[4200];
    latup_tensor x;            /* the image in the VAE's range [-1, 1] */
    latup_decode_plan plan;    /* the library's plan for it (exact or tiled) */
} enc_item;

typedef struct {
    cli_args a;
    const char *vae_path, *dump, *range;
    int n, verbose, quiet, dry, json, threads;
    latup_encode_opts o;       /* every item's options (held set per item) */
    enc_item *items;
    latup_vae *vae;
    const latup_latent_family *fam; /* --diffusion-latent (NULL: VAE space) */
    double t_load;
    cli_progress prog;
} enc_job;

static int read_options(enc_job *j) {
    const cli_args *a = &j->a;
    j->vae_path = cli_str(a, "--vae");
    j->dump = cli_str(a, "--dump");
    j->range = cli_str(a, "--range");
    j->verbose = cli_given(a, "--verbose");
    j->quiet = cli_given(a, "--quiet");
    j->dry = cli_given(a, "--dry-run");
    j->json = cli_given(a, "--json");
    latup_set_exact_math(cli_given(a, "--exact-math"));
    if (!j->vae_path) return cli_usage("encode", "missing --vae");
    const cli_value *in = cli_get(a, "--in");
    if (!in->given) return cli_usage("encode", "missing --in");
    const char *out = cli_str(a, "--out"), *out_dir = cli_str(a, "--out-dir");
    if (!out && !out_dir) return cli_usage("encode", "missing --out (or --out-dir)");
    if (in->n_list > 1 && !out_dir)
        return cli_usage("encode", "%d inputs need --out-dir DIR (one latent each), not --out", in->n_list);
    if (out && strcmp(out, "-") && !cli_ends_with(out, ".npy"))
        return cli_usage("encode", "--out %s: a latent is written as .npy", out);
    int n_stdin = 0;
    for (int i = 0; i < in->n_list; i++) n_stdin += !strcmp(in->list[i], "-");
    if (n_stdin > 1) return cli_usage("encode", "standard input ('-') can be read once");
    if (j->json && !j->dry) return cli_usage("encode", "--json goes with --dry-run");
    if (cli_given(a, "--seed") && !cli_given(a, "--sample"))
        return cli_usage("encode", "--seed goes with --sample (without it the latent is the posterior's mean)");
    latup_encode_opts *o = &j->o;
    int rc = cli_check_pipeline(a, &o->tile, &o->overlap); /* cli.c: the tiling options, as decode's */
    if (rc >= 0) return rc;
    o->verbose = j->verbose;
    o->sample = cli_given(a, "--sample");
    o->seed = (uint64_t)cli_num(a, "--seed", 0);
    o->max_memory = cli_given(a, "--max-memory") ? (size_t)cli_num(a, "--max-memory", 0) : latup_default_max_memory();
    if (!j->quiet && cli_stderr_is_tty()) o->on_progress = cli_progress_cb, o->progress_user = &j->prog;
    return -1;
}

static int plan_outputs(enc_job *j) {
    const cli_value *in = cli_get(&j->a, "--in");
    const char *out_dir = cli_str(&j->a, "--out-dir");
    for (int i = 0; i < j->n; i++) {
        enc_item *it = &j->items[i];
        it->path = in->list[i];
        if (cli_output_name(&j->a, it->path, "npy", it->stem, sizeof it->stem, it->out, sizeof it->out))
            for (int k = 0; k < i; k++)
                if (!strcmp(j->items[k].out, it->out))
                    return cli_usage("encode", "inputs %s and %s would both write %s", j->items[k].path, it->path,
                                     it->out);
    }
    if (j->dry) return -1;
    latup_status st = out_dir ? cli_mkdirs(out_dir) : LATUP_OK;
    for (int i = 0; i < j->n && !st; i++) st = latup_output_check(j->items[i].out);
    return st ? cli_fail(st) : -1;
}

/* An image: [3,H,W] or [B,3,H,W]; a PNG's [0,1], or a .npy's declared range, into [-1, 1]. */
static int read_image(enc_job *j, enc_item *it) {
    latup_file_kind kind;
    latup_status st = latup_tensor_read(it->path, cli_str(&j->a, "--in-key"), &it->x, &kind);
    if (st) return cli_fail(st);
    char s[96];
    const latup_tensor *x = &it->x;
    if (!((x->ndim == 3 || x->ndim == 4) && x->shape[x->ndim - 3] == 3))
        return cli_fail(latup_set_error(LATUP_E_INPUT, "%s: an image to encode is [3,H,W] or [B,3,H,W], found %s",
                                        it->path, latup_shape_str(s, sizeof s, x->ndim, x->shape)));
    if (kind != LATUP_FILE_PNG && !j->range)
        return cli_usage("encode", "%s: a .npy image needs --range signed ([-1,1]) or unit ([0,1])", it->path);
    const int unit = kind == LATUP_FILE_PNG || !strcmp(j->range, "unit");
    const int64_t n = latup_tensor_numel(x);
    float lo = INFINITY, hi = -INFINITY;
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        const float v = x->data[i];
        if (!isfinite(v)) bad++;
        else lo = v < lo ? v : lo, hi = v > hi ? v : hi;
    }
    if (bad)
        return cli_fail(latup_set_error(LATUP_E_INPUT, "%s: the image holds %lld NaN or Inf values", it->path,
                                        (long long)bad));
    const double want_lo = unit ? 0 : -1;
    if (lo < want_lo - CLI_RANGE_SLACK || hi > 1 + CLI_RANGE_SLACK)
        return cli_fail(latup_set_error(LATUP_E_INPUT,
                                        "%s: values from %g to %g, outside the declared range %s [%g, 1] (--range)",
                                        it->path, lo, hi, unit ? "unit" : "signed", want_lo));
    if (unit)
        for (int64_t i = 0; i < n; i++) x->data[i] = 2.0f * x->data[i] - 1.0f;
    return -1;
}

/* The encoder's downsampling factor: 2^(levels-1), or the patch. */
static int enc_factor(const latup_vae_config *c) {
    return c->encoder == LATUP_VAE_ENCODER_PATCH ? c->enc_patch : 1 << (c->enc_n_levels - 1);
}

static int load_and_plan(enc_job *j) {
    const double t0 = cli_now();
    latup_status st = latup_vae_load_parts(j->vae_path, LATUP_VAE_ENCODER, &j->vae);
    if (st) return cli_fail(st);
    j->t_load = cli_now() - t0;
    const latup_vae_config *c = latup_vae_get_config(j->vae);
    if (j->verbose) {
        fprintf(stderr, "latup: %s: VAE encoder (%s), %d latent channels%s, %lld parameters; loaded in %.2f s\n",
                j->vae_path, latup_vae_encoder_name(c->encoder), c->z_channels, c->has_quant_conv ? ", quant_conv" : "",
                (long long)c->enc_params, j->t_load);
        latup_system_info si;
        if (latup_system_info_get(&si) == LATUP_OK) latup_system_info_print(&si, stderr, "latup: ");
    }
    int rc = cli_latent_space(&j->a, j->vae, j->vae_path, &j->fam); /* cli.c: as decode reads it */
    if (rc >= 0) return rc;
    if (j->fam && j->verbose)
        fprintf(stderr, "latup: latent for the diffusion model: (z - %g) * %g (%s)\n", j->fam->shift, j->fam->scaling,
                j->fam->name);
    for (int i = 0; i < j->n; i++) {
        enc_item *it = &j->items[i];
        latup_encode_opts o = j->o;
        for (int k = i + 1; k < j->n; k++) o.held += (size_t)latup_tensor_numel(&j->items[k].x) * sizeof(float);
        const int H = (int)it->x.shape[it->x.ndim - 2], W = (int)it->x.shape[it->x.ndim - 1];
        if ((st = latup_vae_plan_encode(j->vae, H, W, &o, &it->plan))) {
            latup_error_prefix(it->path);
            return cli_fail(st);
        }
    }
    return -1;
}

/* After every check: a side that is not a multiple of the factor loses its last rows or columns. */
static void warn_floor(const enc_job *j) {
    if (j->quiet) return;
    const int f = enc_factor(latup_vae_get_config(j->vae));
    for (int i = 0; i < j->n; i++) {
        const latup_tensor *x = &j->items[i].x;
        const int H = (int)x->shape[x->ndim - 2], W = (int)x->shape[x->ndim - 1];
        if (H % f || W % f)
            fprintf(stderr, "latup encode: warning: %s: %dx%d is not a multiple of %d: the %dx%d latent covers the "
                    "top-left %dx%d pixels (the model's floor; crop or pad the image to choose)\n", j->items[i].path,
                    W, H, f, W / f, H / f, W / f * f, H / f * f);
    }
    cli_warn_pipeline(&j->a);
}

static int dry_run(const enc_job *j) {
    const double MiB = 1024.0 * 1024.0;
    size_t peak = 0;
    for (int i = 0; i < j->n; i++) peak = j->items[i].plan.peak > peak ? j->items[i].plan.peak : peak;
    if (!j->json) {
        for (int i = 0; i < j->n; i++) {
            const enc_item *it = &j->items[i];
            const latup_decode_plan *p = &it->plan;
            char s[96];
            printf("%s %s: encode ", it->path, latup_shape_str(s, sizeof s, it->x.ndim, it->x.shape));
            if (p->tiled) printf("tiled (tiles of %d, overlap %d: %s)", p->tile, p->overlap, p->reason);
            else printf("exact");
            printf(", arena %.1f MiB; peak %.1f MiB\n", p->plan.mem.arena / MiB, p->peak / MiB);
        }
        printf("encode: peak %.1f MiB (%zu bytes); budget %.1f MiB; %d threads\n", peak / MiB, peak,
               j->o.max_memory / MiB, j->threads);
    } else {
        cli_json w;
        cli_json_start(&w, stdout);
        cli_json_object(&w, NULL);
        cli_json_str(&w, "command", "encode");
        cli_json_int(&w, "threads", j->threads);
        cli_json_uint(&w, "max_memory", j->o.max_memory);
        cli_json_uint(&w, "peak", peak);
        cli_json_array(&w, "items");
        for (int i = 0; i < j->n; i++) {
            const enc_item *it = &j->items[i];
            const latup_decode_plan *p = &it->plan;
            cli_json_object(&w, NULL);
            cli_json_str(&w, "input", it->path);
            cli_json_array(&w, "shape");
            for (int d = 0; d < it->x.ndim; d++) cli_json_int(&w, NULL, it->x.shape[d]);
            cli_json_end(&w);
            cli_json_bool(&w, "tiled", p->tiled);
            cli_json_int(&w, "tile", p->tile);
            cli_json_int(&w, "overlap", p->overlap);
            cli_json_str(&w, "reason", p->reason);
            cli_json_uint(&w, "arena", p->plan.mem.arena);
            cli_json_uint(&w, "weights", p->plan.mem.weights);
            cli_json_uint(&w, "peak", p->peak);
            cli_json_end(&w);
        }
        cli_json_end(&w);
        cli_json_end(&w);
        const char *bad = cli_json_finish(&w);
        if (bad) return cli_fail(latup_set_error(LATUP_E_INTERNAL, "--json: %s (a bug in latup)", bad));
    }
    return fflush(stdout) == 0 ? 0 : cli_fail(latup_set_error(LATUP_E_IO, "<stdout>: write failed"));
}

static latup_status compute(enc_job *j, int i, latup_outputs *outs) {
    enc_item *it = &j->items[i];
    latup_encode_opts o = j->o;
    cli_dump_ctx d;
    latup_status st = LATUP_OK;
    if (j->dump) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s%s%s", j->dump, j->n > 1 ? "/" : "", j->n > 1 ? it->stem : "");
        if ((st = cli_dump_open(&d, dir))) return st;
        o.dump = cli_dump_npy, o.dump_user = &d;
    }
    if (it->plan.tiled && !j->quiet)
        fprintf(stderr, "latup: %s: encoding in tiles of %d latent pixels, overlap %d (%s): an approximation of the "
                "exact encode\n", it->path, it->plan.tile, it->plan.overlap, it->plan.reason);
    char label[32] = "";
    if (j->n > 1) snprintf(label, sizeof label, "[%d/%d] ", i + 1, j->n);
    cli_progress_begin(&j->prog, o.on_progress ? stderr : NULL, label, cli_progress_now());
    latup_tensor z = {0};
    const double t0 = cli_now();
    st = latup_vae_encode(j->vae, &it->x, &z, &o);
    const double secs = cli_now() - t0;
    cli_progress_end(&j->prog);
    if (j->dump) {
        latup_status sd = cli_dump_close(&d);
        if (!st) st = sd;
    }
    if (st == LATUP_E_INPUT) latup_error_prefix(it->path);
    if (!st && j->fam) latup_latent_from_vae(&z, j->fam);
    if (!st) st = latup_outputs_add_npy(outs, it->out, &z);
    if (!st && !j->quiet) {
        char si[96], so[96], idx[32] = "";
        if (j->n > 1) snprintf(idx, sizeof idx, "[%d/%d] ", i + 1, j->n);
        fprintf(stderr, "latup: %s%s %s -> encode%s%s -> %s %s (%.2f s", idx, it->path,
                latup_shape_str(si, sizeof si, it->x.ndim, it->x.shape), it->plan.tiled ? " (tiled: approximate)" : "",
                o.sample ? " (a draw)" : "", it->out, latup_shape_str(so, sizeof so, z.ndim, z.shape), secs);
        if (j->n == 1) fprintf(stderr, "; load %.2f s, %d thread%s", j->t_load, j->threads, j->threads == 1 ? "" : "s");
        fprintf(stderr, ")\n");
    }
    latup_tensor_free(&z);
    return st;
}

int cli_encode(int argc, char **argv) {
    enc_job j;
    memset(&j, 0, sizeof j);
    int rc = cli_parse(&CLI_CMD_ENCODE, argc, argv, &j.a, stdout, stderr);
    if (rc >= 0) return rc;
    if ((rc = read_options(&j)) >= 0) return rc;
    j.n = cli_get(&j.a, "--in")->n_list;
    if (!(j.items = calloc((size_t)j.n, sizeof *j.items))) return cli_fail(latup_set_error(LATUP_E_NOMEM, "out of memory"));
    latup_outputs *outs = NULL;
    if ((rc = plan_outputs(&j)) >= 0) goto out;
    j.threads = cli_setup_threads(&j.a);
    for (int i = 0; i < j.n; i++)
        if ((rc = read_image(&j, &j.items[i])) >= 0) goto out;
    if ((rc = load_and_plan(&j)) >= 0) goto out;
    warn_floor(&j);
    if (j.dry) {
        rc = dry_run(&j);
        goto out;
    }
    latup_status st = latup_outputs_new(&outs);
    for (int i = 0; i < j.n && !st; i++) {
        st = compute(&j, i, outs);
        latup_tensor_free(&j.items[i].x); /* done with it */
    }
    if (!st) st = latup_outputs_commit(outs);
    rc = st ? cli_fail(st) : 0;
out:
    latup_outputs_free(outs);
    for (int i = 0; i < j.n; i++) latup_tensor_free(&j.items[i].x);
    free(j.items);
    latup_vae_free(j.vae);
    return rc;
}
