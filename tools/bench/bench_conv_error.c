/* bench_conv_error.c — the error of the 3x3 conv's methods against a double-precision twin, per
 * layer kind of the FLUX decoder (issue 23): direct (im2col, exact math), Winograd F(2x2,3x3) and
 * F(4x4,3x3) forced through conv_ctx.wino_tile, on random weights at the decoder's widths and on
 * every 3x3 conv of a trained checkpoint. Not a test: it prints, per layer, max|err| / max|ref| and
 * the worst error over the direct bound (sqrt(K) + 4) u S + u |ref| (the bound test_kernels
 * asserts; u = 2^-24, S = sum |w x| + |b| per output), so the tile
 * rule in src/ops/conv.c (wino_tile) and the bounds in docs/testing.md come from its figures.
 *   build/bench_conv_error [--size 24] [--trained ref_data/trained/vae.ldm.safetensors.gz]
 * The input goes through the decoder's transforms as the convs see it: GroupNorm + SiLU (a random
 * per-channel affine, then SiLU) or nearest x2. */
#include "io/checkpoint.h"
#include "io/weights.h"
#include "ops/kernels.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return ((rng >> 11) + 0.5) / 9007199254740992.0;
}
static float nrand(float mu, float sd) { return mu + sd * (float)(sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand())); }

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "bench_conv_error: out of memory\n");
        exit(3);
    }
    return p;
}

typedef struct {
    double rel, over_bound; /* max|err| / max|ref|; max over elements of |err| / (sqrt(K) u S) */
} err_t;

/* the bound as test_kernels writes it: (sqrt(K) + xtra) u S + u |ref|, xtra = 4 for the input
 * transform's own rounding */
static err_t compare(const float *out, const double *ref, const double *S, size_t n, double K, double xtra) {
    double m = 0, r = 0, ob = 0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs(out[i] - ref[i]);
        m = fmax(m, e), r = fmax(r, fabs(ref[i]));
        const double b = (sqrt(K) + xtra) * 0x1p-24 * S[i] + 0x1p-24 * fabs(ref[i]);
        if (b > 0) ob = fmax(ob, e / b);
    }
    return (err_t){r > 0 ? m / r : 0, ob};
}

/* one layer: Cin -> Cout at H x W output, op 'g' (GroupNorm + SiLU), 'u' (nearest x2) or 'n' */
static void layer(const char *label, const float *w, const float *b, int Cin, int Cout, int H, int W, char kind) {
    const int up = kind == 'u', norm = kind == 'g';
    const int Hs = up ? H / 2 : H, Ws = up ? W / 2 : W;
    const size_t nin = (size_t)Cin * Hs * Ws, nout = (size_t)Cout * H * W;
    float *in = xmalloc(nin * sizeof(float)), *mu = xmalloc(Cin * sizeof(float)), *sc = xmalloc(Cin * sizeof(float)),
          *nb = xmalloc(Cin * sizeof(float)), *out = xmalloc(nout * sizeof(float));
    for (size_t i = 0; i < nin; i++) in[i] = nrand(0.3f, 1.0f);
    for (int c = 0; c < Cin; c++) mu[c] = nrand(0.3f, 0.2f), sc[c] = 0.7f + 0.6f * (float)urand(), nb[c] = nrand(0, 0.5f);
    /* the twin: the transformed input in double, rounded to float (as the kernel's transform) */
    float *tin = xmalloc((size_t)Cin * H * W * sizeof(float));
    for (int c = 0; c < Cin; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double v = in[((size_t)c * Hs + (up ? y / 2 : y)) * Ws + (up ? x / 2 : x)];
                if (norm) v = (v - mu[c]) * sc[c] + nb[c], v = v / (1.0 + exp(-v));
                tin[((size_t)c * H + y) * W + x] = (float)v;
            }
    double *ref = xmalloc(nout * sizeof(double)), *S = xmalloc(nout * sizeof(double));
    for (int co = 0; co < Cout; co++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double acc = b ? b[co] : 0, s = b ? fabs(b[co]) : 0;
                for (int ci = 0; ci < Cin; ci++)
                    for (int ky = 0; ky < 3; ky++) {
                        const int yy = y + ky - 1;
                        if (yy < 0 || yy >= H) continue;
                        for (int kx = 0; kx < 3; kx++) {
                            const int xx = x + kx - 1;
                            if (xx < 0 || xx >= W) continue;
                            const double t = (double)w[(((size_t)co * Cin + ci) * 3 + ky) * 3 + kx] *
                                             tin[((size_t)ci * H + yy) * W + xx];
                            acc += t, s += fabs(t);
                        }
                    }
                ref[((size_t)co * H + y) * W + x] = acc, S[((size_t)co * H + y) * W + x] = s;
            }
    const conv_input_op op = {.upsample2x = up, .norm = norm, .norm_mean = mu, .norm_scale = sc, .norm_bias = nb,
                              .silu = norm};
    err_t e[3];
    for (int m = 0; m < 3; m++) { /* direct, F(2x2), F(4x4) */
        latup_set_exact_math(m == 0);
        const conv_ctx ctx = {.nthreads = 2, .name = label, .wino_tile = m == 1 ? 2 : 4};
        const size_t ns = latup_conv2d_scratch_floats(Cin, H, W, Cout, 3, &op, &ctx);
        float *scratch = xmalloc(ns * sizeof(float));
        if (latup_conv2d_forward(out, in, w, b, Cin, H, W, Cout, 3, &op, scratch, ns, &ctx) != LATUP_OK) {
            fprintf(stderr, "bench_conv_error: %s: %s\n", label, latup_last_error());
            exit(5);
        }
        free(scratch);
        e[m] = compare(out, ref, S, nout, (double)Cin * 9 + 1, up || norm ? 4.0 : 0.0);
    }
    latup_set_exact_math(0);
    printf("| %s | %d -> %d | %s | %.2e | %.2e | %.2e | %.2f | %.2f | %.2f | %.1f |\n", label, Cin, Cout,
           up ? "nearest x2" : norm ? "GN + SiLU" : "none", e[0].rel, e[1].rel, e[2].rel, e[0].over_bound,
           e[1].over_bound, e[2].over_bound, e[1].rel > 0 ? e[2].rel / e[1].rel : 0);
    fflush(stdout);
    free(in), free(mu), free(sc), free(nb), free(out), free(tin), free(ref), free(S);
}

static void header(const char *what) {
    printf("\n%s\n\n| layer | channels | input op | direct | F(2x2) | F(4x4) | direct / bound | F(2x2) / bound "
           "| F(4x4) / bound | F(4x4) / F(2x2) |\n|---|---|---|---|---|---|---|---|---|---|\n",
           what);
}

int main(int argc, char **argv) {
    int size = 24;
    const char *trained = "ref_data/trained/vae.ldm.safetensors.gz";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc)
            size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--trained") && i + 1 < argc)
            trained = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--size N] [--trained FILE]\n", argv[0]);
            return 1;
        }
    }
    if (size < 2 || size % 2) {
        fprintf(stderr, "bench_conv_error: --size must be even and >= 2\n");
        return 1;
    }
    /* random weights, N(0, 1/(9 Cin)), bias N(0, 0.1): the FLUX decoder's 3x3 layer kinds */
    static const struct { const char *label; int Cin, Cout; char kind; } kinds[] = {
        {"mid / up.3 / up.2 resnet conv", 512, 512, 'g'}, {"up.3 / up.2 upsample conv", 512, 512, 'u'},
        {"up.1 block.0 conv1", 512, 256, 'g'},           {"up.1 resnet conv", 256, 256, 'g'},
        {"up.1 upsample conv", 256, 256, 'u'},           {"up.0 block.0 conv1", 256, 128, 'g'},
        {"up.0 resnet conv", 128, 128, 'g'},             {"64-channel conv", 64, 64, 'g'},
        {"32-channel conv", 32, 32, 'g'}};
    header("random weights");
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        const int Cin = kinds[k].Cin, Cout = kinds[k].Cout;
        float *w = xmalloc((size_t)Cout * Cin * 9 * sizeof(float)), *b = xmalloc(Cout * sizeof(float));
        for (size_t i = 0; i < (size_t)Cout * Cin * 9; i++) w[i] = nrand(0, 1.0f / sqrtf(9.0f * Cin));
        for (int i = 0; i < Cout; i++) b[i] = nrand(0, 0.1f);
        layer(kinds[k].label, w, b, Cin, Cout, size, size, kinds[k].kind);
        free(w), free(b);
    }
    /* the trained checkpoint's 3x3 convs with 16+ channels each way */
    latup_weights tw = {0};
    if (latup_safetensors_load(trained, &tw) != LATUP_OK) {
        fprintf(stderr, "bench_conv_error: %s\n", latup_last_error());
        return 2;
    }
    char what[600];
    snprintf(what, sizeof what, "trained weights (%s)", trained);
    header(what);
    for (int i = 0; i < tw.n; i++) {
        latup_wtensor *t = &tw.t[i];
        const size_t n = strlen(t->name);
        if (t->ndim != 4 || t->shape[2] != 3 || t->shape[3] != 3 || n < 7 || strcmp(t->name + n - 7, ".weight")) continue;
        const int Cout = (int)t->shape[0], Cin = (int)t->shape[1];
        if (Cin < 16 || Cout < 16) continue;
        char bname[512];
        snprintf(bname, sizeof bname, "%.*s.bias", (int)(n - 7), t->name);
        latup_wtensor *bt = (latup_wtensor *)latup_weights_find(&tw, bname);
        if (latup_weights_fetch(&tw, t) != LATUP_OK || (bt && latup_weights_fetch(&tw, bt) != LATUP_OK)) {
            fprintf(stderr, "bench_conv_error: %s\n", latup_last_error());
            return 2;
        }
        const char kind = strstr(t->name, "upsample") ? 'u' : strstr(t->name, "conv_in") ? 'n' : 'g';
        layer(t->name, t->f32, bt ? bt->f32 : NULL, Cin, Cout, size, size, kind);
    }
    latup_weights_free(&tw);
    return 0;
}
