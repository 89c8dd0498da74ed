/* arena.c — the counting/carving arena (arena.h): a stack of takes over one allocation, with
 * guard floats after each take in SANITIZE=1 builds. */
#include "ops/arena.h"

#include <stdlib.h>
#include <string.h>

/* A NaN with a payload no computation produces: compared bit for bit. */
static const uint32_t GUARD_BITS = 0x7fa5c0deu;

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

void latup_arena_begin_count(latup_arena *a) {
    memset(a, 0, sizeof *a);
    a->counting = 1;
}

latup_status latup_arena_begin_run(latup_arena *a, const char *what) {
    if (a->st != LATUP_OK) return a->st;
    a->base = latup_alloc_floats(a->peak > 0 ? a->peak : 16, what);
    if (!a->base) return LATUP_E_NOMEM;
    a->cap = a->peak;
    a->counting = 0;
    latup_arena_rewind(a);
    return LATUP_OK;
}

void latup_arena_rewind(latup_arena *a) {
    a->top = 0;
    a->n_live = 0;
}

void latup_arena_free(latup_arena *a) {
    free(a->base);
    a->base = NULL;
    a->cap = 0;
}

static void remember_kind(latup_arena *a, const char *name, size_t floats) {
    for (int i = 0; i < a->n_kinds; i++)
        if (strcmp(a->kinds[i].name, name) == 0) {
            if (floats > a->kinds[i].floats) a->kinds[i].floats = floats;
            a->kinds[i].count++;
            return;
        }
    if (a->n_kinds == LATUP_ARENA_MAX_KINDS) return; /* the print lists the first ones */
    latup_arena_kind *k = &a->kinds[a->n_kinds++];
    snprintf(k->name, sizeof k->name, "%s", name);
    k->floats = floats;
    k->count = 1;
}

float *latup_arena_take(latup_arena *a, size_t floats, const char *name) {
    if (a->st != LATUP_OK) return NULL;
    if (floats > SIZE_MAX / 8 - 64) {
        a->st = latup_fail(LATUP_E_INPUT, "buffer '%s' would need %zu floats: the input is too large", name, floats);
        return NULL;
    }
    const size_t step = round16(floats) + round16(LATUP_ARENA_GUARD_FLOATS);
    if (a->top > SIZE_MAX / 8 - step) {
        a->st = latup_fail(LATUP_E_INPUT, "buffer '%s': the arena would pass %zu bytes: the input is too large", name,
                           SIZE_MAX / 2);
        return NULL;
    }
    if (a->n_live == LATUP_ARENA_MAX_LIVE) {
        a->st = latup_fail(LATUP_E_INTERNAL, "arena: more than %d buffers alive at once (taking '%s')",
                           LATUP_ARENA_MAX_LIVE, name);
        return NULL;
    }
    if (!a->counting && a->top + step > a->cap) {
        a->st = latup_fail(LATUP_E_INTERNAL, "arena: buffer '%s' (%zu floats) does not fit: %zu of %zu floats in use "
                           "(the run did not replay the counted takes)", name, floats, a->top, a->cap);
        return NULL;
    }
    const size_t off = a->top;
    a->live[a->n_live].off = off;
    a->live[a->n_live].floats = floats;
    a->live[a->n_live].name = name;
    a->n_live++;
    a->top += step;
    if (a->top > a->peak) a->peak = a->top;
    if (a->counting) {
        remember_kind(a, name, floats);
        return NULL;
    }
    float *p = a->base + off;
#if LATUP_ARENA_GUARD_FLOATS > 0
    for (size_t i = floats; i < step; i++) memcpy(p + i, &GUARD_BITS, sizeof GUARD_BITS);
#endif
    return p;
}

float *latup_arena_take3(latup_arena *a, size_t n0, size_t n1, size_t n2, const char *name) {
    size_t n;
    if (!latup_mul_ok(n0, n1, &n) || !latup_mul_ok(n, n2, &n)) {
        if (a->st == LATUP_OK)
            a->st = latup_fail(LATUP_E_INPUT, "buffer '%s' of %zu x %zu x %zu floats: the input is too large", name,
                               n0, n1, n2);
        return NULL;
    }
    return latup_arena_take(a, n, name);
}

size_t latup_arena_mark(const latup_arena *a) { return (size_t)a->n_live; }

/* Guard of live take i: the floats between its end and the next take's start. */
static int guard_ok(const latup_arena *a, int i) {
    if (a->counting || !a->base) return 1;
    const size_t end = a->live[i].off + round16(a->live[i].floats) + round16(LATUP_ARENA_GUARD_FLOATS);
    for (size_t k = a->live[i].off + a->live[i].floats; k < end; k++)
        if (memcmp(a->base + k, &GUARD_BITS, sizeof GUARD_BITS) != 0) return 0;
    return 1;
}

static void guard_fail(latup_arena *a, int i) {
    if (a->st == LATUP_OK)
        a->st = latup_fail(LATUP_E_INTERNAL, "arena: the guard after buffer '%s' (%zu floats) was overwritten",
                           a->live[i].name, a->live[i].floats);
}

void latup_arena_release(latup_arena *a, size_t mark) {
    while ((size_t)a->n_live > mark) {
        const int i = a->n_live - 1;
        if (LATUP_ARENA_GUARD_FLOATS > 0 && !guard_ok(a, i)) guard_fail(a, i);
        a->top = a->live[i].off;
        a->n_live--;
    }
}

latup_status latup_arena_check(latup_arena *a) {
    if (LATUP_ARENA_GUARD_FLOATS > 0)
        for (int i = 0; i < a->n_live; i++)
            if (!guard_ok(a, i)) {
                guard_fail(a, i);
                break;
            }
    return a->st;
}

size_t latup_arena_bytes(const latup_arena *a) { return a->peak * sizeof(float); }

void latup_arena_print(const latup_arena *a, const char *title, FILE *f) {
    const double MiB = 1024.0 * 1024.0;
    fprintf(f, "%s\n", title);
    for (int i = 0; i < a->n_kinds; i++) {
        const latup_arena_kind *k = &a->kinds[i];
        if (k->count > 1)
            fprintf(f, "  %-36s %10.2f MiB (largest of %ld)\n", k->name, k->floats * sizeof(float) / MiB, k->count);
        else
            fprintf(f, "  %-36s %10.2f MiB\n", k->name, k->floats * sizeof(float) / MiB);
    }
    fprintf(f, "  %-36s %10.2f MiB (the high-water mark of the takes above)\n", "arena", latup_arena_bytes(a) / MiB);
}
