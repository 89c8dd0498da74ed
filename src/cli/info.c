/* info.c — `latup info FILE`: what a checkpoint holds (format, tensors, dtypes, parameters)
 * and the model latup infers from it. */
#include "cli/cli.h"
#include "common.h"
#include "io/weights.h"

#include <stdio.h>
#include <string.h>

static const char *USAGE =
    "usage: latup info FILE\n"
    "\n"
    "Prints the format, tensor count, dtypes and parameter count of a checkpoint (safetensors or\n"
    "PyTorch .pth, optionally gzip-compressed) and the model inferred from it: for LUA the widths,\n"
    "depths, heads, window, scales and channels; for SwinIR the tail kind and scale; for a VAE the\n"
    "family, channels and naming convention.\n"
    "\n"
    "exit codes: 0 ok (also for a valid file that is not a model latup runs), 2 bad file, 4 i/o error.\n";

static void print_list(const char *label, const int *v, int n, const char *fmt) {
    printf("%s[", label);
    for (int i = 0; i < n; i++) printf(i ? ", " : ""), printf(fmt, v[i]);
    printf("]\n");
}

int cli_info(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (path || argv[i][0] == '-') return cli_usage("info", "unexpected argument '%s'", argv[i]);
        path = argv[i];
    }
    if (!path) return cli_usage("info", "missing FILE");
    latup_weights w;
    latup_status st = latup_weights_load(path, &w);
    if (st != LATUP_OK) return cli_fail(st);
    int64_t count[4] = {0}, params = 0;
    for (int i = 0; i < w.n; i++) {
        count[w.t[i].dtype]++;
        params += w.t[i].numel;
    }
    printf("file:         %s\n", path);
    printf("format:       %s%s%s\n", w.format ? w.format : "?", w.wrapper ? ", state dict under " : "",
           w.wrapper ? w.wrapper : "");
    printf("tensors:      %d (", w.n);
    int first = 1;
    for (int d = 0; d < 4; d++)
        if (count[d]) printf("%s%lld %s", first ? "" : ", ", (long long)count[d], latup_dtype_name((latup_dtype)d)), first = 0;
    printf(")\nelements:     %lld (all tensors, buffers included)\n", (long long)params);
    latup_weights_free(&w);

    latup_lua *m = NULL;
    st = latup_lua_load(path, &m);
    if (st != LATUP_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", latup_last_error());
        latup_vae *v = NULL;
        if (latup_vae_load(path, &v) == LATUP_OK) {
            const latup_vae_config *c = latup_vae_get_config(v);
            printf("model:        VAE decoder (AutoencoderKL)\n");
            printf("family:       %s\n", latup_vae_family_guess(c));
            printf("naming:       %s%s%s\n", latup_vae_naming_name(c->naming), c->prefix[0] ? ", under " : "", c->prefix);
            printf("parameters:   %lld (decoder)\n", (long long)c->n_params);
            printf("channels:     latent %d -> image %d; post_quant_conv %s\n", c->z_channels, c->out_channels,
                   c->has_post_quant_conv ? "yes" : "no");
            print_list("levels:       ", c->channels, c->n_levels, "%d");
            printf("resnets:      %d per level; upsampling x%d\n", c->blocks_per_level, 1 << (c->n_levels - 1));
            latup_vae_free(v);
            return 0;
        }
        printf("model:        not a model latup runs (LUA, SwinIR or VAE): %s\n", why);
        return 0;
    }
    const latup_lua_config *c = latup_lua_get_config(m);
    const int lua = c->tail == LATUP_TAIL_LUA_HEADS;
    printf("model:        %s\n", lua ? "LUA (SwinIR trunk + multi-scale pixel-shuffle heads)"
                                     : "SwinIR (pixel-space super-resolution)");
    printf("parameters:   %lld\n", (long long)c->n_params);
    printf("channels:     in %d, out %d%s\n", c->in_chans, c->out_chans,
           c->has_mean ? " (RGB: DIV2K mean subtracted and added back)" : "");
    printf("embed dim:    %d\n", c->embed_dim);
    print_list("depths:       ", c->depths, c->num_layers, "%d");
    print_list("heads:        ", c->num_heads, c->num_layers, "%d");
    printf("window:       %d (shift %d)\n", c->window_size, c->window_size / 2);
    printf("mlp hidden:   %d\n", c->mlp_hidden);
    printf("tail:         %s", latup_tail_name(c->tail));
    if (c->head_feat) printf(", width %d", c->head_feat);
    printf("\n");
    print_list("scales:       ", c->scales, c->n_scales, "x%d");
    latup_lua_free(m);
    return 0;
}
