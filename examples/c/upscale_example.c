/* upscale_example.c — a program built against an installed liblatup, nothing but latup.h:
 *
 *   cc upscale_example.c $(pkg-config --cflags --libs latup) -o upscale_example
 *   ./upscale_example MODEL [LATENT.npy [OUT.npy]]
 *
 * Loads a LUA checkpoint, upscales the latent (or a made-up one of the model's channel count) by
 * the model's first scale, and writes the result when OUT is given. Every call returns a status;
 * latup_last_error() says what went wrong, and the status is the exit code. */
#include <latup.h>

#include <stdio.h>

static int fail(latup_status st) {
    fprintf(stderr, "upscale_example: %s\n", latup_last_error());
    return (int)st;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s MODEL [LATENT.npy [OUT.npy]]\n", argv[0]);
        return 1;
    }
    printf("liblatup %s (headers %d.%d.%d)\n", latup_version(), LATUP_VERSION_MAJOR, LATUP_VERSION_MINOR,
           LATUP_VERSION_PATCH);
    latup_lua *m;
    latup_status st = latup_lua_load(argv[1], &m);
    if (st) return fail(st);
    const latup_lua_config *c = latup_lua_get_config(m);

    latup_tensor x, y;
    if (argc >= 3) {
        st = latup_tensor_read(argv[2], NULL, &x, NULL);
    } else { /* a smooth made-up latent [C, 24, 20] */
        int64_t shape[3] = {c->in_chans, 24, 20};
        st = latup_tensor_alloc(&x, 3, shape);
        for (int64_t i = 0; !st && i < latup_tensor_numel(&x); i++) x.data[i] = (float)((i * 7919) % 200) / 100.0f - 1.0f;
    }
    if (st) {
        latup_lua_free(m);
        return fail(st);
    }
    latup_set_threads(latup_default_threads());
    st = latup_lua_upscale(m, &x, c->scales[0], &y, NULL);
    if (!st) {
        char a[96], b[96];
        printf("%s: %s -> x%d -> %s, %d threads\n", argv[1], latup_shape_str(a, sizeof a, x.ndim, x.shape),
               c->scales[0], latup_shape_str(b, sizeof b, y.ndim, y.shape), latup_get_threads());
        if (argc == 4) st = latup_npy_write(argv[3], &y);
        latup_tensor_free(&y);
    }
    latup_tensor_free(&x);
    latup_lua_free(m);
    return st ? fail(st) : 0;
}
