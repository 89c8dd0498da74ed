/* pipeline.c — `latup upscale`, `latup decode` and `latup run`: one flow for the three. Every
 * check that needs no compute comes first (options, output paths, every input read and checked,
 * models loaded and matched against the inputs and each other), then each input is computed with
 * the models loaded once, and all outputs are committed together at the end, or none are. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "jsonw.h"
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

enum { LUA = 1, VAE = 2 }; /* the stages a command runs: upscale LUA, decode VAE, run both */

typedef struct {
    const char *path;        /* as given ("-": stdin) */
    char stem[256];          /* output and dump names */
    char out[4200];          /* output file, pattern (one file per batch element), or "-" */
    int pattern;
    latup_tensor x;          /* read, unpacked and converted to VAE space */
    int64_t batch;
    latup_call *call;        /* checked and planned by the library: what runs, what --dry-run prints */
} item;

typedef struct job job;

/* What the stage hook and the dump callback of the item being computed share. */
typedef struct {
    const job *j;
    const item *it;
    cli_dump_ctx d;
    latup_stage stage;      /* the last stage begun (0: none) */
    double t_up, t_dec;
    latup_status st;        /* the first dump failure */
} stage_ctx;

struct job {
    int stages;
    const char *cmd;
    char *command_line;      /* argv shell-quoted: the PNGs' "parameters" text (NULL: none) */
    cli_args a;
    const char *model_path, *vae_path, *save, *dump, *in_key;
    int packed_h, packed_w;
    int scale, png, png_bits, verbose, quiet, dry, json, threads;
    latup_call_opts copt;    /* every item's call options (models, hooks and held added per item) */
    item *items;
    int n;
    latup_lua *lua;
    latup_vae *vae;
    double t_load;
    stage_ctx sc;
    cli_progress prog;       /* the progress line of the item being computed (a terminal only) */
};

static int is_png_name(const char *p) { return cli_ends_with(p, ".png"); }
static int is_npy_name(const char *p) { return cli_ends_with(p, ".npy"); }

/* ---- 1. options -------------------------------------------------------------------------------- */

static int read_options(job *j) {
    const cli_args *a = &j->a;
    const char *cmd = j->cmd;
    j->model_path = cli_str(a, "--model");
    j->vae_path = cli_str(a, "--vae");
    j->save = cli_str(a, "--save-latent");
    j->dump = cli_str(a, "--dump");
    j->in_key = cli_str(a, "--in-key");
    j->scale = (int)cli_num(a, "--scale", 0);
    j->verbose = cli_given(a, "--verbose");
    j->quiet = cli_given(a, "--quiet");
    j->dry = cli_given(a, "--dry-run");
    j->json = cli_given(a, "--json");
    latup_set_exact_math(cli_given(a, "--exact-math"));
    j->png_bits = cli_given(a, "--png-bits") ? atoi(cli_str(a, "--png-bits")) : 8;
    if ((j->stages & LUA) && !j->model_path) return cli_usage(cmd, "missing --model");
    if ((j->stages & LUA) && !j->scale) return cli_usage(cmd, "missing --scale");
    if ((j->stages & VAE) && !j->vae_path) return cli_usage(cmd, "missing --vae");
    const cli_value *in = cli_get(a, "--in");
    if (!in->given) return cli_usage(cmd, "missing --in");
    const char *out = cli_str(a, "--out"), *out_dir = cli_str(a, "--out-dir");
    if (!out && !out_dir) return cli_usage(cmd, "missing --out (or --out-dir)");
    if (in->n_list > 1 && !out_dir)
        return cli_usage(cmd, "%d inputs need --out-dir DIR (one output each), not --out", in->n_list);
    int n_stdin = 0;
    for (int i = 0; i < in->n_list; i++) n_stdin += !strcmp(in->list[i], "-");
    if (n_stdin > 1) return cli_usage(cmd, "standard input ('-') can be read once");
    if (j->json && !j->dry) return cli_usage(cmd, "--json goes with --dry-run");

    /* the output format: the extension of --out, else --format, else the command's default */
    const char *format = cli_str(a, "--format");
    if (out && strcmp(out, "-")) {
        if (!is_png_name(out) && !is_npy_name(out))
            return cli_usage(cmd, "--out %s: the output must end in .npy or .png", out);
        if (format && strcmp(format, is_png_name(out) ? "png" : "npy"))
            return cli_usage(cmd, "--format %s, but --out %s says otherwise", format, out);
        j->png = is_png_name(out);
    } else {
        j->png = format ? !strcmp(format, "png") : j->stages != LUA;
    }
    if (cli_given(a, "--png-bits") && !j->png) return cli_usage(cmd, "--png-bits applies to PNG output");
    if (j->save && !is_npy_name(j->save)) return cli_usage(cmd, "--save-latent %s: must end in .npy", j->save);
    if (j->save && out && !strcmp(j->save, out))
        return cli_usage(cmd, "--save-latent and --out name the same file");

    const char *fam = cli_str(a, "--diffusion-latent");
    if (fam && !strcmp(fam, "vae") && !(j->stages & VAE))
        return cli_usage(cmd, "--diffusion-latent vae takes the scaling from the config.json of --vae's folder, and "
                              "%s has no --vae: name the family (sd, sdxl, sd3, flux)", cmd);
    const cli_value *pk = cli_get(a, "--flux-packed");
    if (pk->given) {
        if (pk->num % 2 || pk->num2 % 2)
            return cli_usage(cmd, "--flux-packed %s: the latent size must be even in both dimensions", pk->text);
        j->packed_h = (int)pk->num, j->packed_w = (int)pk->num2;
    }
    /* the call's options, every item's; the library's rules for them checked before any file */
    latup_call_opts *o = &j->copt;
    o->scale = j->scale;
    int rc = cli_check_pipeline(a, &o->tile, &o->overlap); /* cli.c: tiling options, a terminal on stdout */
    if (rc >= 0) return rc;
    o->verbose = j->verbose;
    if (!j->quiet && cli_stderr_is_tty()) o->on_progress = cli_progress_cb, o->progress_user = &j->prog;
    o->max_memory = cli_given(a, "--max-memory") ? (size_t)cli_num(a, "--max-memory", 0) : latup_default_max_memory();
    const char *device = cli_str(a, "--device");
    o->device = device && !strcmp(device, "cuda") ? LATUP_DEVICE_CUDA : LATUP_DEVICE_CPU;
    if (latup_call_opts_check(o))
        return cli_usage(cmd, "--tile %d --overlap %d: %s", o->tile, o->overlap, latup_last_error());
    latup_status st = latup_device_check(o->device); /* before any work, not at the first compute */
    if (st) {
        latup_error_prefix("--device cuda");
        return cli_fail(st);
    }
    return -1;
}

/* ---- 2. outputs, checked before any work ------------------------------------------------------------ */

static int plan_outputs(job *j) {
    const cli_value *in = cli_get(&j->a, "--in");
    const char *out = cli_str(&j->a, "--out"), *out_dir = cli_str(&j->a, "--out-dir");
    for (int i = 0; i < j->n; i++) {
        item *it = &j->items[i];
        it->path = in->list[i];
        if (cli_output_name(&j->a, it->path, j->png ? "png" : "npy", it->stem, sizeof it->stem, it->out, sizeof it->out)) {
            for (int k = 0; k < i; k++)
                if (!strcmp(j->items[k].out, it->out))
                    return cli_usage(j->cmd, "inputs %s and %s would both write %s", j->items[k].path, it->path,
                                     it->out);
        } else {
            it->pattern = strcmp(out, "-") ? cli_pattern_kind(out) : 0;
            if (it->pattern < 0)
                return cli_usage(j->cmd, "--out %s: a pattern takes one %%d (or %%03d, ...) and %%%% for %%", out);
        }
    }
    if (j->dry) return -1; /* writes nothing, so checks nothing */
    latup_status st = out_dir ? cli_mkdirs(out_dir) : LATUP_OK;
    for (int i = 0; i < j->n && !st; i++) {
        const item *it = &j->items[i];
        char first[4200];
        if (it->pattern) cli_pattern_format(first, sizeof first, it->out, 0);
        st = latup_output_check(it->pattern ? first : it->out);
    }
    if (!st && j->save) st = latup_output_check(j->save);
    return st ? cli_fail(st) : -1;
}

/* ---- 3. inputs, read and checked before any model is loaded ------------------------------------------ */

static latup_status read_input(job *j, item *it) {
    latup_file_kind kind;
    latup_status st = latup_tensor_read(it->path, j->in_key, &it->x, &kind);
    if (st) return st;
    if (kind == LATUP_FILE_PNG && (j->stages & VAE))
        return latup_set_error(LATUP_E_INPUT, "%s: a PNG is an image, not a latent to decode", it->path);
    if (j->packed_h) {
        latup_tensor u;
        st = latup_flux_unpack(&it->x, j->packed_h, j->packed_w, &u);
        latup_tensor_free(&it->x);
        if (st) {
            latup_error_prefix(it->path);
            return st;
        }
        it->x = u;
    }
    /* the shape and the values are the library's to check (latup_prepare), once; the latent
     * space is converted once the VAE is loaded (to_vae_space) */
    return LATUP_OK;
}

/* A batch of several images as PNG needs one file per image: a pattern (made up under --out-dir). */
static int check_batch_outputs(job *j, item *it) {
    if (!j->png || it->batch == 1 || it->pattern) return -1;
    if (!cli_str(&j->a, "--out-dir"))
        return cli_usage(j->cmd,
                         "--out %s: %s holds a batch of %lld images and a PNG holds one: give a pattern such as "
                         "out_%%03d.png, or write .npy",
                         it->out, it->path, (long long)it->batch);
    snprintf(it->out, sizeof it->out, "%s/%s_%%0%dd.png", cli_str(&j->a, "--out-dir"), it->stem,
             it->batch > 1000 ? 4 + (it->batch > 10000) : 3);
    it->pattern = 1;
    return -1;
}

/* ---- 4. models, matched against the inputs and each other -------------------------------------------- */

static int load_models(job *j) {
    double t0 = cli_now();
    latup_status st = LATUP_OK;
    if (j->stages & LUA) st = latup_lua_load(j->model_path, &j->lua);
    if (!st && (j->stages & VAE)) st = latup_vae_load_parts(j->vae_path, LATUP_VAE_DECODER, &j->vae); /* not its encoder */
    if (st) return cli_fail(st);
    j->t_load = cli_now() - t0;
    if (j->lua && j->verbose) {
        const latup_lua_config *c = latup_lua_get_config(j->lua);
        fprintf(stderr, "latup: %s: %s model, E %d, %d RSTBs, window %d, %d -> %d channels, %lld parameters\n",
                j->model_path, c->tail == LATUP_TAIL_LUA_HEADS ? "LUA" : "SwinIR", c->embed_dim, c->num_layers,
                c->window_size, c->in_chans, c->out_chans, (long long)c->n_params);
    }
    if (j->vae && j->verbose) {
        const latup_vae_config *c = latup_vae_get_config(j->vae);
        fprintf(stderr, "latup: %s: VAE decoder, %s, %s names, %lld parameters\n", j->vae_path,
                latup_vae_family_guess(c), latup_vae_naming_name(c->naming), (long long)c->n_params);
    }
    if (j->verbose) fprintf(stderr, "latup: models loaded in %.2f s\n", j->t_load);
    latup_system_info si; /* which kernels run, and a warning when they are narrower than the CPU's */
    if (j->verbose && latup_system_info_get(&si) == LATUP_OK) latup_system_info_print(&si, stderr, "latup: ");
    return -1;
}

/* --diffusion-latent: z / scaling + shift, the numbers from cli_latent_space (a VAE folder's
 * config.json wins over a family named with it). */
static int to_vae_space(job *j) {
    const latup_latent_family *f;
    int rc = cli_latent_space(&j->a, j->vae, j->vae_path, &f); /* cli.c: the family, or the folder's config.json */
    if (rc >= 0 || !f) return rc;
    if (j->verbose)
        fprintf(stderr, "latup: latent to VAE space: z / %g + %g (%s%s)\n", f->scaling, f->shift,
                f == latup_vae_latent_family(j->vae) ? "scaling_factor and shift_factor of " : "--diffusion-latent ",
                f->name);
    for (int i = 0; i < j->n; i++) {
        latup_tensor *x = &j->items[i].x;
        if (x->ndim == 3 || x->ndim == 4) latup_latent_to_vae(x, f);
    }
    return -1;
}

static void on_stage(void *user, latup_stage s, int done, double seconds);
static void on_dump(void *user, const char *name, const latup_tensor *t, int batch);

/* The library checks the input against the models and plans the call: the CLI holds the inputs
 * of the items after this one while it runs (those before are freed), so they count too. */
static int prepare_item(job *j, int i) {
    item *it = &j->items[i];
    latup_call_opts o = j->copt;
    o.lua = j->lua, o.vae = j->vae;
    o.dump = j->dump ? on_dump : NULL, o.dump_user = &j->sc, o.stage = on_stage, o.stage_user = &j->sc;
    for (int k = i + 1; k < j->n; k++) o.held += (size_t)latup_tensor_numel(&j->items[k].x) * sizeof(float);
    latup_status st = latup_prepare(&o, &it->x, &it->call);
    if (st) {
        if (st == LATUP_E_INPUT || st == LATUP_E_NOMEM || st == LATUP_E_USAGE) latup_error_prefix(it->path);
        return cli_fail(st);
    }
    const latup_plan *p = latup_call_plan(it->call);
    it->batch = p->batch;
    if (j->png && !j->vae && p->out_shape[p->out_ndim - 3] != 3) {
        char s[96];
        return cli_usage(j->cmd, "%s: a PNG holds one RGB image [3,H,W]; the output is %s (write .npy instead)", it->out,
                         latup_shape_str(s, sizeof s, p->out_ndim, p->out_shape));
    }
    return check_batch_outputs(j, it);
}

/* ---- 5. --dry-run: the library's plan, nothing computed ---------------------------------------------------- */

static void dry_run_text(const job *j, FILE *f, size_t peak) {
    const double MiB = 1024.0 * 1024.0;
    for (int i = 0; i < j->n; i++) {
        const item *it = &j->items[i];
        const latup_plan *p = latup_call_plan(it->call);
        const latup_decode_plan *dp = &p->decode;
        char s[96];
        fprintf(f, "%s %s:", it->path, latup_shape_str(s, sizeof s, it->x.ndim, it->x.shape));
        if (j->lua) fprintf(f, " upscale x%d, arena %.1f MiB;", j->scale, p->mem.upscale_arena / MiB);
        if (j->vae && dp->tiled)
            fprintf(f, " decode tiled (tiles of %d, overlap %d: %s), arena %.1f MiB;", dp->tile, dp->overlap,
                    dp->reason, p->mem.decode_arena / MiB);
        else if (j->vae)
            fprintf(f, " decode exact, arena %.1f MiB;", p->mem.decode_arena / MiB);
        fprintf(f, " peak %.1f MiB (process %.1f, weights %.1f, held %.1f, tensors %.1f)\n", p->mem.peak / MiB,
                p->mem.process / MiB, p->mem.weights / MiB, p->mem.held / MiB,
                (p->mem.input + p->mem.upscaled + p->mem.image) / MiB);
    }
    const latup_plan *p0 = latup_call_plan(j->items[0].call);
    fprintf(f, "%s: peak %.1f MiB (%zu bytes, weights %.1f MiB); budget %.1f MiB; %d threads\n", j->cmd, peak / MiB,
            peak, p0->mem.weights / MiB, j->copt.max_memory / MiB, j->threads);
}

static void json_plan(cli_json *w, const latup_mem_plan *m) {
    cli_json_object(w, "plan");
    cli_json_uint(w, "arena", m->arena);
    cli_json_uint(w, "weights", m->weights);
    cli_json_uint(w, "output", m->output);
    cli_json_object(w, "takes");
    for (int k = 0; k < m->n_takes; k++) cli_json_uint(w, m->takes[k].name, m->takes[k].bytes);
    cli_json_end(w);
    cli_json_end(w);
}

static void json_memory(cli_json *w, const latup_call_memory *m) {
    cli_json_object(w, "memory");
    cli_json_uint(w, "process", m->process);
    cli_json_uint(w, "weights", m->weights);
    cli_json_uint(w, "held", m->held);
    cli_json_uint(w, "input", m->input);
    cli_json_uint(w, "upscaled", m->upscaled);
    cli_json_uint(w, "image", m->image);
    cli_json_uint(w, "upscale_arena", m->upscale_arena);
    cli_json_uint(w, "decode_arena", m->decode_arena);
    cli_json_uint(w, "peak", m->peak);
    cli_json_end(w);
}

/* The plan for a scheduler, sizes in bytes; docs/scale-out.md describes its members. */
static const char *dry_run_json(const job *j, FILE *f, size_t peak) {
    cli_json w;
    cli_json_start(&w, f);
    cli_json_object(&w, NULL);
    cli_json_str(&w, "command", j->cmd);
    cli_json_int(&w, "threads", j->threads);
    cli_json_uint(&w, "max_memory", j->copt.max_memory);
    cli_json_uint(&w, "peak", peak);
    cli_json_array(&w, "items");
    for (int i = 0; i < j->n; i++) {
        const item *it = &j->items[i];
        const latup_plan *p = latup_call_plan(it->call);
        cli_json_object(&w, NULL);
        cli_json_str(&w, "input", it->path);
        cli_json_array(&w, "shape");
        for (int d = 0; d < it->x.ndim; d++) cli_json_int(&w, NULL, it->x.shape[d]);
        cli_json_end(&w);
        cli_json_uint(&w, "peak", p->mem.peak);
        json_memory(&w, &p->mem);
        cli_json_array(&w, "output_shape");
        for (int d = 0; d < p->out_ndim; d++) cli_json_int(&w, NULL, p->out_shape[d]);
        cli_json_end(&w);
        if (j->lua) {
            cli_json_object(&w, "upscale");
            cli_json_int(&w, "scale", j->scale);
            json_plan(&w, &p->upscale.mem);
            cli_json_end(&w);
        }
        if (j->vae) {
            const latup_decode_plan *dp = &p->decode;
            cli_json_object(&w, "decode");
            cli_json_int(&w, "h", p->dec_h);
            cli_json_int(&w, "w", p->dec_w);
            cli_json_bool(&w, "tiled", dp->tiled);
            cli_json_int(&w, "tile", dp->tile);
            cli_json_int(&w, "overlap", dp->overlap);
            cli_json_str(&w, "reason", dp->reason);
            cli_json_uint(&w, "peak", dp->peak);
            json_plan(&w, &dp->plan.mem);
            cli_json_end(&w);
        }
        cli_json_end(&w);
    }
    cli_json_end(&w);
    cli_json_end(&w);
    return cli_json_finish(&w);
}

static int dry_run(const job *j) {
    size_t peak = 0;
    for (int i = 0; i < j->n; i++) {
        size_t p = latup_call_plan(j->items[i].call)->mem.peak;
        if (p > peak) peak = p;
    }
    if (j->json) {
        const char *bad = dry_run_json(j, stdout, peak);
        if (bad) return cli_fail(latup_set_error(LATUP_E_INTERNAL, "--json: %s (a bug in latup)", bad));
    } else {
        dry_run_text(j, stdout, peak);
    }
    return fflush(stdout) == 0 ? 0 : cli_fail(latup_set_error(LATUP_E_IO, "<stdout>: write failed"));
}

/* ---- 6. compute, and outputs into the set ------------------------------------------------------------------ */

/* A PNG says what made it: latup's version, and the command (as stable-diffusion.cpp writes its
 * "parameters"), pasteable into a shell. */
static latup_status add_png(const job *j, latup_outputs *outs, const char *path, const latup_tensor *t,
                            latup_pixel_range range) {
    char software[64];
    snprintf(software, sizeof software, "latup %s", latup_version());
    const latup_png_text text[2] = {{"Software", software}, {"parameters", j->command_line}};
    return latup_outputs_add_png_text(outs, path, t, range, j->png_bits, text, j->command_line ? 2 : 1);
}

/* One output tensor: a file, or one file per batch element through the pattern. */
static latup_status add_output(const job *j, latup_outputs *outs, const item *it, const char *path, int pattern,
                               const latup_tensor *t, int png, latup_pixel_range range) {
    if (!pattern) return png ? add_png(j, outs, path, t, range) : latup_outputs_add_npy(outs, path, t);
    const int64_t B = t->ndim == 4 ? t->shape[0] : 1;
    const int64_t per = latup_tensor_numel(t) / B;
    for (int64_t b = 0; b < B; b++) {
        latup_tensor one = *t;
        one.data = t->data + b * per;
        if (one.ndim == 4) one.shape[0] = 1;
        char name[4200];
        if (!cli_pattern_format(name, sizeof name, path, b))
            return latup_set_error(LATUP_E_USAGE, "%s: output name too long", it->out);
        latup_status st = png ? add_png(j, outs, name, &one, range) : latup_outputs_add_npy(outs, name, &one);
        if (st) return st;
    }
    return LATUP_OK;
}

static latup_status dump_for(const job *j, const item *it, const char *stage, cli_dump_ctx *d) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s%s%s%s%s", j->dump, j->n > 1 ? "/" : "", j->n > 1 ? it->stem : "",
             j->stages == (LUA | VAE) ? "/" : "", j->stages == (LUA | VAE) ? stage : "");
    return cli_dump_open(d, dir);
}

/* The library's stage hook: each stage's dumps into their directory, its seconds, and which stage
 * a failure came from. */
static void on_stage(void *user, latup_stage s, int done, double seconds) {
    stage_ctx *c = user;
    c->stage = s;
    if (!done) {
        if (c->j->dump && c->st == LATUP_OK) c->st = dump_for(c->j, c->it, s == LATUP_STAGE_UPSCALE ? "lua" : "vae", &c->d);
        return;
    }
    if (s == LATUP_STAGE_UPSCALE) c->t_up = seconds;
    else c->t_dec = seconds;
    if (c->j->dump) {
        latup_status sd = cli_dump_close(&c->d);
        if (c->st == LATUP_OK) c->st = sd;
    }
}

static void on_dump(void *user, const char *name, const latup_tensor *t, int batch) {
    stage_ctx *c = user;
    if (c->st == LATUP_OK) cli_dump_npy(&c->d, name, t, batch);
}

static latup_status compute(job *j, item *it, latup_outputs *outs, latup_tensor *y) {
    stage_ctx *c = &j->sc;
    const latup_plan *p = latup_call_plan(it->call);
    c->it = it, c->stage = 0, c->st = LATUP_OK, c->t_up = c->t_dec = 0;
    if (j->vae && p->decode.tiled && !j->quiet) /* an approximation is announced as one, before it runs */
        fprintf(stderr,
                "latup: %s: decoding in tiles of %d latent pixels, overlap %d (%s; budget %.2f GiB): an "
                "approximation of the exact decode\n",
                it->path, p->decode.tile, p->decode.overlap, p->decode.reason, j->copt.max_memory / 1073741824.0);
    latup_tensor up = {0}, res = {0};
    char label[32] = "";
    if (j->n > 1) snprintf(label, sizeof label, "[%d/%d] ", (int)(it - j->items) + 1, j->n);
    cli_progress_begin(&j->prog, j->copt.on_progress ? stderr : NULL, label, cli_progress_now());
    latup_status st = latup_execute(it->call, &it->x, j->save && j->vae ? &up : NULL, &res);
    cli_progress_end(&j->prog); /* before any other line: the summary, or the error */
    if (j->dump && c->stage && st != LATUP_OK) cli_dump_close(&c->d); /* a stage that failed midway */
    if (st == LATUP_OK) st = c->st;
    if (st == LATUP_E_INPUT) { /* name the file the fault lies with */
        char what[600];
        if (c->stage == LATUP_STAGE_UPSCALE)
            snprintf(what, sizeof what, "%s (upscaled x%d by %s)", it->path, j->scale, j->model_path);
        else if (c->stage == LATUP_STAGE_DECODE && j->lua)
            snprintf(what, sizeof what, "%s (decoding the x%d upscale of %s)", j->vae_path, j->scale, it->path);
        else if (c->stage == LATUP_STAGE_DECODE)
            snprintf(what, sizeof what, "%s (decoded by %s)", it->path, j->vae_path);
        else
            snprintf(what, sizeof what, "%s", it->path);
        latup_error_prefix(what);
    }
    const latup_pixel_range range = j->vae ? LATUP_PIXELS_SIGNED : LATUP_PIXELS_UNIT;
    if (!st) st = add_output(j, outs, it, it->out, it->pattern, &res, j->png, range);
    if (!st && j->save) st = add_output(j, outs, it, j->save, 0, j->vae ? &up : &res, 0, range);
    latup_tensor_free(&up);
    if (st) latup_tensor_free(&res);
    else *y = res; /* the caller reports the shape */
    return st;
}

static void report(const job *j, const item *it, int i, const latup_tensor *y, double t_up, double t_dec) {
    char si[96], so[96], sc[16] = "";
    latup_shape_str(si, sizeof si, it->x.ndim, it->x.shape);
    latup_shape_str(so, sizeof so, y->ndim, y->shape);
    if (j->lua) snprintf(sc, sizeof sc, " -> x%d", j->scale);
    char idx[32] = "";
    if (j->n > 1) snprintf(idx, sizeof idx, "[%d/%d] ", i + 1, j->n);
    fprintf(stderr, "latup: %s%s %s%s%s -> %s %s (", idx, it->path, si, sc,
            !j->vae                                   ? ""
            : latup_call_plan(it->call)->decode.tiled ? " -> decode (tiled: approximate)"
                                                      : " -> decode",
            it->out, so);
    if (j->lua && j->vae) fprintf(stderr, "upscale %.2f s, decode %.2f s", t_up, t_dec);
    else fprintf(stderr, "%.2f s", t_up + t_dec);
    if (j->n == 1) fprintf(stderr, "; load %.2f s, %d thread%s", j->t_load, j->threads, j->threads == 1 ? "" : "s");
    fprintf(stderr, ")\n");
}

/* ---- the flow ---------------------------------------------------------------------------------------- */

/* "latup" and argv as one shell command: a word is quoted only when it needs it, '...' when it is
 * printable ASCII, else $'...' with \xNN for every other byte, so any argument comes back exact.
 * NULL when it would pass the PNG text limit (1 MiB) or memory runs out: the image goes without. */
static char *command_line(int argc, char **argv) {
    size_t cap = sizeof "latup";
    for (int i = 0; i < argc; i++) cap += 4 * strlen(argv[i]) + 4; /* \xNN per byte, $'', a space */
    if (cap > ((size_t)1 << 20)) return NULL;
    char *s = malloc(cap), *o = s;
    if (!s) return NULL;
    o += sprintf(o, "latup");
    for (int i = 0; i < argc; i++) {
        const unsigned char *a = (const unsigned char *)argv[i];
        int plain = *a != 0, printable = 1;
        for (const unsigned char *p = a; *p; p++) {
            if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./=:,+@%-", *p)) plain = 0;
            if (*p < 0x20 || *p >= 0x7F) printable = 0;
        }
        *o++ = ' ';
        if (plain) {
            o += sprintf(o, "%s", argv[i]);
        } else if (printable) {
            *o++ = '\'';
            for (const unsigned char *p = a; *p; p++) o += *p == '\'' ? sprintf(o, "'\\''") : sprintf(o, "%c", *p);
            *o++ = '\'';
        } else {
            *o++ = '$', *o++ = '\'';
            for (const unsigned char *p = a; *p; p++)
                o += *p == '\'' || *p == '\\' ? sprintf(o, "\\%c", *p)
                     : *p < 0x20 || *p >= 0x7F ? sprintf(o, "\\x%02x", *p)
                                              : sprintf(o, "%c", *p);
            *o++ = '\'';
        }
    }
    *o = '\0';
    return s;
}

/* Outputs stay open as temporaries until the commit: one descriptor each. */
static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int pipeline(int stages, const cli_command *cmd, int argc, char **argv) {
    job j;
    memset(&j, 0, sizeof j);
    j.stages = stages;
    j.cmd = cmd->name;
    int rc = cli_parse(cmd, argc, argv, &j.a, stdout, stderr);
    if (rc >= 0) return rc;
    if ((rc = read_options(&j)) >= 0) return rc;
    j.command_line = command_line(argc, argv);
    j.n = cli_get(&j.a, "--in")->n_list;
    if (!(j.items = calloc((size_t)j.n, sizeof *j.items))) return cli_fail(latup_set_error(LATUP_E_NOMEM, "out of memory"));
    latup_outputs *outs = NULL;
    double t0 = cli_now();
    if ((rc = plan_outputs(&j)) >= 0) goto out;
    raise_fd_limit();
    j.threads = cli_setup_threads(&j.a);
    for (int i = 0; i < j.n; i++) {
        latup_status st = read_input(&j, &j.items[i]);
        if (st) {
            rc = cli_fail(st);
            goto out;
        }
    }
    if ((rc = load_models(&j)) >= 0) goto out;
    if ((rc = to_vae_space(&j)) >= 0) goto out;
    j.sc.j = &j;
    for (int i = 0; i < j.n; i++)
        if ((rc = prepare_item(&j, i)) >= 0) goto out;
    cli_warn_pipeline(&j.a); /* cli.c: every check has passed */
    if (j.dry) {
        rc = dry_run(&j);
        goto out;
    }
    latup_status st = latup_outputs_new(&outs);
    for (int i = 0; i < j.n && !st; i++) {
        latup_tensor y = {0};
        st = compute(&j, &j.items[i], outs, &y);
        if (!st && !j.quiet) report(&j, &j.items[i], i, &y, j.sc.t_up, j.sc.t_dec);
        latup_tensor_free(&y);
        latup_tensor_free(&j.items[i].x); /* done with it */
        latup_call_free(j.items[i].call);
        j.items[i].call = NULL;
    }
    if (!st) st = latup_outputs_commit(outs);
    if (st) {
        rc = cli_fail(st);
        goto out;
    }
    if (!j.quiet && j.n > 1) {
        double total = cli_now() - t0;
        fprintf(stderr, "latup: %d inputs in %.2f s (models loaded once in %.2f s; %.2f s per input; %d threads)\n",
                j.n, total, j.t_load, (total - j.t_load) / j.n, j.threads);
    }
    rc = 0;
out:
    latup_outputs_free(outs);
    for (int i = 0; i < j.n; i++) {
        latup_tensor_free(&j.items[i].x);
        latup_call_free(j.items[i].call);
    }
    free(j.items);
    free(j.command_line);
    latup_lua_free(j.lua);
    latup_vae_free(j.vae);
    return rc;
}

int cli_upscale(int argc, char **argv) { return pipeline(LUA, &CLI_CMD_UPSCALE, argc, argv); }
int cli_decode(int argc, char **argv) { return pipeline(VAE, &CLI_CMD_DECODE, argc, argv); }
int cli_run(int argc, char **argv) { return pipeline(LUA | VAE, &CLI_CMD_RUN, argc, argv); }
