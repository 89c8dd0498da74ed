/* dev_arena.h — device memory planned up front, with the contract of src/ops/arena.h: the GPU
 * forward pass runs twice, first counting (every take returns NULL and only sizes add up), then
 * for real, carving the very same takes out of one cudaMalloc of the counted size; a take that
 * does not fit is a named LATUP_E_INTERNAL, never an overrun. Two kinds of take:
 *  - stack takes (lcu_take, lcu_mark/lcu_release): scoped scratch, the high-water mark counts;
 *  - slots (lcu_slot): a few long-lived buffers reused by every stage (the VAE's rotating
 *    activations), each as large as its largest use in the counting pass.
 * Every take is followed by guard floats: the rounding to 16 floats plus LCU_GUARD more. With guards on (LATUP_CUDA_CHECK=1) they are filled
 * with a NaN pattern, read back with a device-to-host copy when released or checked, and a
 * damaged one names its buffer. Header-only and free of CUDA calls (memory goes through
 * lcu_mem_ops), so tests/test_cuda_host.c runs it on host memory. */
#ifndef LATUP_CUDA_DEV_ARENA_H
#define LATUP_CUDA_DEV_ARENA_H

#include "common.h"

#include <stdio.h>
#include <string.h>

#define LCU_GUARD 16
#define LCU_GUARD_BITS 0x7fa5c0deu  /* a NaN payload no computation produces */
#define LCU_MAX_LIVE 64
#define LCU_MAX_SLOTS 4
#define LCU_MAX_KINDS 40

typedef struct {
    /* x[0..n) = bits; 0 or an error code */
    int (*fill)(float *x, int64_t n, uint32_t bits);
    /* n floats from memory the arena carves into host memory; 0 or an error code */
    int (*read)(float *host, const float *x, size_t n);
} lcu_mem_ops;

typedef struct {
    char name[48];
    size_t floats;  /* largest take of this name */
    long count;
} lcu_arena_kind;

typedef struct {
    float *base;                        /* NULL while counting */
    size_t cap;                         /* floats behind base */
    size_t slot_floats[LCU_MAX_SLOTS];  /* each slot's size (its largest use) */
    size_t stack_base;                  /* slots end here, the stack starts (real pass) */
    size_t top, peak;                   /* stack floats in use / high-water mark */
    int counting, guards;
    latup_status st;                    /* first failure, sticky: later takes return NULL */
    struct {
        size_t off, floats;
        const char *name;
    } live[LCU_MAX_LIVE];
    int n_live;
    lcu_arena_kind kinds[LCU_MAX_KINDS];
    int n_kinds;
    lcu_mem_ops ops;
} lcu_arena;

static inline size_t lcu_round16(size_t n) { return (n + 15) / 16 * 16; }

static inline void lcu_arena_begin_count(lcu_arena *a) {
    memset(a, 0, sizeof *a);
    a->counting = 1;
}

/* Floats the real pass needs: the slots, then the stack's high-water mark. */
static inline size_t lcu_arena_floats(const lcu_arena *a) {
    size_t n = a->peak;
    for (int i = 0; i < LCU_MAX_SLOTS; i++)
        if (a->slot_floats[i]) n += lcu_round16(a->slot_floats[i]) + LCU_GUARD;
    return n;
}

/* The guard of a buffer of `floats` at p: from its end to the next 16-float boundary, plus LCU_GUARD. */
static inline size_t lcu_guard_len(size_t floats) { return lcu_round16(floats) - floats + LCU_GUARD; }

static inline int lcu_guard_fill(lcu_arena *a, float *p, size_t floats) {
    return a->guards && a->ops.fill(p + floats, (int64_t)lcu_guard_len(floats), LCU_GUARD_BITS) != 0;
}

/* 1 if the guard after the buffer of `floats` at p still holds the pattern */
static inline int lcu_guard_intact(lcu_arena *a, const float *p, size_t floats) {
    float g[2 * LCU_GUARD];
    const size_t n = lcu_guard_len(floats);
    if (!a->guards) return 1;
    if (a->ops.read(g, p + floats, n) != 0) return 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &g[i], sizeof u);
        if (u != LCU_GUARD_BITS) return 0;
    }
    return 1;
}

/* Starts the real pass over base[cap] (cap >= lcu_arena_floats()), slots first. */
static inline latup_status lcu_arena_begin_run(lcu_arena *a, float *base, size_t cap, int guards, lcu_mem_ops ops) {
    if (a->st != LATUP_OK) return a->st;
    if (lcu_arena_floats(a) > cap)
        return a->st = latup_fail(LATUP_E_INTERNAL, "device arena: %zu floats given, the plan needs %zu", cap,
                                  lcu_arena_floats(a));
    a->base = base, a->cap = cap, a->counting = 0, a->guards = guards, a->ops = ops;
    size_t off = 0;
    for (int i = 0; i < LCU_MAX_SLOTS; i++) {
        if (!a->slot_floats[i]) continue;
        if (lcu_guard_fill(a, base + off, a->slot_floats[i]))
            return a->st = latup_fail(LATUP_E_DEVICE, "CUDA: cannot write the arena's guards");
        off += lcu_round16(a->slot_floats[i]) + LCU_GUARD;
    }
    a->stack_base = off;
    a->top = 0, a->n_live = 0;
    return LATUP_OK;
}

/* Back to an empty stack, keeping memory and slots: every image or tile replays the takes. */
static inline void lcu_arena_rewind(lcu_arena *a) { a->top = 0, a->n_live = 0; }

static inline void lcu_remember(lcu_arena *a, const char *name, size_t floats) {
    for (int i = 0; i < a->n_kinds; i++)
        if (strcmp(a->kinds[i].name, name) == 0) {
            if (floats > a->kinds[i].floats) a->kinds[i].floats = floats;
            a->kinds[i].count++;
            return;
        }
    if (a->n_kinds == LCU_MAX_KINDS) return;
    lcu_arena_kind *k = &a->kinds[a->n_kinds++];
    snprintf(k->name, sizeof k->name, "%s", name);
    k->floats = floats, k->count = 1;
}

static inline int lcu_too_big(lcu_arena *a, size_t floats, const char *name) {
    if (floats <= SIZE_MAX / 8 - 64) return 0;
    if (a->st == LATUP_OK)
        a->st = latup_fail(LATUP_E_INPUT, "device buffer '%s' would need %zu floats: the input is too large", name, floats);
    return 1;
}

/* A stack take of `floats` named `name` (a literal, or a string that outlives the take). */
static inline float *lcu_take(lcu_arena *a, size_t floats, const char *name) {
    if (a->st != LATUP_OK || lcu_too_big(a, floats, name)) return NULL;
    const size_t step = lcu_round16(floats) + LCU_GUARD;
    if (a->n_live == LCU_MAX_LIVE) {
        a->st = latup_fail(LATUP_E_INTERNAL, "device arena: more than %d buffers alive (taking '%s')", LCU_MAX_LIVE, name);
        return NULL;
    }
    if (!a->counting && a->stack_base + a->top + step > a->cap) {
        a->st = latup_fail(LATUP_E_INTERNAL, "device arena: buffer '%s' (%zu floats) does not fit: %zu of %zu floats "
                           "in use (the run did not replay the counted takes)", name, floats, a->stack_base + a->top, a->cap);
        return NULL;
    }
    const size_t off = a->top;
    a->live[a->n_live].off = off, a->live[a->n_live].floats = floats, a->live[a->n_live].name = name;
    a->n_live++;
    a->top += step;
    if (a->top > a->peak) a->peak = a->top;
    if (a->counting) {
        lcu_remember(a, name, floats);
        return NULL;
    }
    float *p = a->base + a->stack_base + off;
    if (lcu_guard_fill(a, p, floats)) {
        a->st = latup_fail(LATUP_E_DEVICE, "CUDA: cannot write the guard of '%s'", name);
        return NULL;
    }
    return p;
}

/* Slot i, holding `floats` now: counting grows the slot to its largest use; the real pass hands
 * it out if the use fits (it must: the same code ran while counting). */
static inline float *lcu_slot(lcu_arena *a, int i, size_t floats, const char *name) {
    if (a->st != LATUP_OK || lcu_too_big(a, floats, name)) return NULL;
    if (i < 0 || i >= LCU_MAX_SLOTS) {
        a->st = latup_fail(LATUP_E_INTERNAL, "device arena: slot %d of '%s' out of range", i, name);
        return NULL;
    }
    if (a->counting) {
        if (floats > a->slot_floats[i]) a->slot_floats[i] = floats;
        lcu_remember(a, name, floats);
        return NULL;
    }
    if (floats > a->slot_floats[i]) {
        a->st = latup_fail(LATUP_E_INTERNAL, "device arena: '%s' needs %zu floats, slot %d holds %zu (the run did "
                           "not replay the counted takes)", name, floats, i, a->slot_floats[i]);
        return NULL;
    }
    size_t off = 0;
    for (int j = 0; j < i; j++)
        if (a->slot_floats[j]) off += lcu_round16(a->slot_floats[j]) + LCU_GUARD;
    return a->base + off;
}

static inline size_t lcu_mark(const lcu_arena *a) { return (size_t)a->n_live; }

static inline void lcu_guard_failed(lcu_arena *a, const char *name, size_t floats) {
    if (a->st == LATUP_OK)
        a->st = latup_fail(LATUP_E_INTERNAL, "device arena: the guard after buffer '%s' (%zu floats) was overwritten",
                           name, floats);
}

/* Pops every take above mark, checking their guards first. */
static inline void lcu_release(lcu_arena *a, size_t mark) {
    while ((size_t)a->n_live > mark) {
        const int i = a->n_live - 1;
        if (!a->counting && a->base && !lcu_guard_intact(a, a->base + a->stack_base + a->live[i].off, a->live[i].floats))
            lcu_guard_failed(a, a->live[i].name, a->live[i].floats);
        a->top = a->live[i].off;
        a->n_live--;
    }
}

/* Checks the guards of the slots and of every live take. */
static inline latup_status lcu_arena_check(lcu_arena *a) {
    if (a->counting || !a->base || !a->guards) return a->st;
    size_t off = 0;
    for (int i = 0; i < LCU_MAX_SLOTS; i++) {
        if (!a->slot_floats[i]) continue;
        if (!lcu_guard_intact(a, a->base + off, a->slot_floats[i])) {
            char name[32];
            snprintf(name, sizeof name, "slot %d", i);
            lcu_guard_failed(a, name, a->slot_floats[i]);
            return a->st;
        }
        off += lcu_round16(a->slot_floats[i]) + LCU_GUARD;
    }
    for (int i = 0; i < a->n_live; i++)
        if (!lcu_guard_intact(a, a->base + a->stack_base + a->live[i].off, a->live[i].floats)) {
            lcu_guard_failed(a, a->live[i].name, a->live[i].floats);
            break;
        }
    return a->st;
}

/* The takes by name (largest, count), then the total. */
static inline void lcu_arena_print(const lcu_arena *a, const char *title, FILE *f) {
    const double MiB = 1024.0 * 1024.0;
    fprintf(f, "%s\n", title);
    for (int i = 0; i < a->n_kinds; i++) {
        const lcu_arena_kind *k = &a->kinds[i];
        fprintf(f, "  %-36s %10.2f MiB", k->name, k->floats * sizeof(float) / MiB);
        if (k->count > 1) fprintf(f, " (largest of %ld)", k->count);
        fputc('\n', f);
    }
    fprintf(f, "  %-36s %10.2f MiB (slots + the high-water mark of the stack)\n", "device arena",
            lcu_arena_floats(a) * sizeof(float) / MiB);
}

#endif
