/* arena.h — the one owner of scratch memory. A model's forward pass takes every buffer it needs
 * from an arena, and the same code runs twice: a counting pass (no memory behind the arena) adds
 * up the takes, then the real pass carves those very takes out of one allocation of the counted
 * size. The plan is therefore, by construction, what the code takes; there is no second
 * computation of any size to drift from the first.
 *
 * Takes are a stack: latup_arena_mark() / latup_arena_release() return the memory of scoped
 * scratch (a conv's im2col band, attention scores) for the next op to reuse; the arena's size is
 * the stack's high-water mark. Slots are for buffers a pass rotates through (the VAE's three
 * activation buffers): each slot's size is the largest write the counting pass asked of it, and
 * the real pass checks every write against that capacity. The slots sit below the stack. Each take is rounded up to 16 floats (64 bytes, so every buffer is
 * aligned for any SIMD width). With guards on (always in SANITIZE=1 builds on the CPU; under
 * LATUP_CUDA_CHECK=1 on the GPU) a run of guard floats follows every take and slot;
 * latup_arena_release() and latup_arena_check() verify them and name a damaged buffer; and every
 * take starts out filled with a NaN, so a read before the first write shows in the result (slots
 * keep what the pass left in them: the activations it rotates).
 *
 * Where the memory lives is a parameter (latup_arena_ops): host memory by default, device memory
 * for the CUDA path (src/cuda/gpu_ops.c), so the CPU and the GPU share one arena and differ only
 * in how the base is allocated and freed and how guards are written and read back. */
#ifndef LATUP_ARENA_H
#define LATUP_ARENA_H

#include "common.h"

#include <stdio.h>

#define LATUP_ARENA_GUARD 16       /* guard floats after a take or slot, when guards are on */
#ifdef LATUP_SANITIZE
#define LATUP_ARENA_GUARD_FLOATS LATUP_ARENA_GUARD
#else
#define LATUP_ARENA_GUARD_FLOATS 0 /* the host arena's guards: on only in SANITIZE=1 builds */
#endif
#define LATUP_ARENA_MAX_LIVE 64   /* takes alive at once (a forward pass holds about 20) */
#define LATUP_ARENA_MAX_SLOTS 4   /* rotating buffers (the VAE's activations) */
#define LATUP_ARENA_MAX_KINDS 32  /* distinct take names remembered for the printed plan */

/* The memory operations of an arena. NULL ops (the default) are host memory. */
typedef struct {
    /* `floats` floats for a real pass; NULL after latup_fail(LATUP_E_NOMEM, ...) naming `what` */
    float *(*alloc)(size_t floats, const char *what);
    void (*free)(float *base);
    /* x[0..n) = bits (as floats): guards; 0, or nonzero when the memory could not be written */
    int (*fill)(float *x, size_t n, uint32_t bits);
    /* 1 if x[0..n) all still hold bits; 0 if one does not or the memory could not be read */
    int (*intact)(const float *x, size_t n, uint32_t bits);
} latup_arena_ops;

typedef struct {
    char name[48];
    size_t floats;   /* the largest take of this name */
    long count;      /* how many times it was taken */
} latup_arena_kind;

typedef struct {
    float *base;              /* NULL while counting */
    size_t cap;               /* floats behind base (real pass) */
    size_t top;               /* floats in use (stack top) */
    size_t peak;              /* high-water mark of top: the plan */
    int counting;
    const latup_arena_ops *ops; /* NULL: host memory */
    size_t guard;             /* guard floats after each take and slot (0: none written or checked) */
    latup_status st;          /* the first failure (sticky): later takes return NULL */
    struct {
        size_t off, floats;
        const char *name;
    } live[LATUP_ARENA_MAX_LIVE];
    struct {
        size_t off, floats;   /* floats: the capacity (counting: the largest request so far) */
        const char *name;
    } slots[LATUP_ARENA_MAX_SLOTS];
    int n_slots;
    size_t slot_floats;       /* floats of the slot region (guards included), below the stack */
    int n_live;
    latup_arena_kind kinds[LATUP_ARENA_MAX_KINDS];
    int n_kinds;
} latup_arena;

/* n rounded up to 16 floats (64 bytes): every buffer aligned for any SIMD width or device load. */
static inline size_t latup_round16(size_t n) { return (n + 15) / 16 * 16; }

/* Starts a counting pass: takes return NULL and only sizes are added up. Host memory, guards as
 * LATUP_ARENA_GUARD_FLOATS (SANITIZE=1 builds). */
void latup_arena_begin_count(latup_arena *a);
/* The same over the memory of `ops` (NULL: host), with guards on or off: the guards' floats are
 * part of the counted size, so this is decided before counting. */
void latup_arena_begin_count_on(latup_arena *a, const latup_arena_ops *ops, int guards);
/* Allocates the counted high-water mark (through the arena's ops) and starts a real pass.
 * LATUP_E_NOMEM (naming `what`) if the allocation fails; LATUP_E_DEVICE if its guards cannot be
 * written. */
latup_status latup_arena_begin_run(latup_arena *a, const char *what);
/* Back to an empty stack, keeping the memory: every image or tile replays the same takes. */
void latup_arena_rewind(latup_arena *a);
void latup_arena_free(latup_arena *a);

/* `floats` floats named `name` (a string literal or one that outlives the take). Counting: NULL.
 * Real pass: the buffer, or NULL with a.st set when it would pass the end of the allocation,
 * which means a pass did not replay the counted takes (a bug: LATUP_E_INTERNAL naming the
 * take). Sizes overflowing size_t are LATUP_E_INPUT (the request came from the input's size). */
float *latup_arena_take(latup_arena *a, size_t floats, const char *name);
/* floats = n0 * n1 * n2 with overflow checked (shapes). */
float *latup_arena_take3(latup_arena *a, size_t n0, size_t n1, size_t n2, const char *name);

/* Slot i (0 <= i < LATUP_ARENA_MAX_SLOTS) for a write of `floats`. Counting: NULL, and the slot
 * grows to the largest request. Real pass: the slot, or NULL with a.st set (LATUP_E_INTERNAL
 * naming it) when the request exceeds the counted capacity. */
float *latup_arena_slot(latup_arena *a, int i, size_t floats, const char *name);

size_t latup_arena_mark(const latup_arena *a);
/* Pops every take above mark, checking their guards first. */
void latup_arena_release(latup_arena *a, size_t mark);
/* Checks the guards of every slot and live take; LATUP_E_INTERNAL naming the first damaged one. */
latup_status latup_arena_check(latup_arena *a);

/* Bytes of the plan (the counted high-water mark, guards included). */
size_t latup_arena_bytes(const latup_arena *a);
/* The counted takes by name (largest size, count) and the arena size into a public plan
 * (weights and output left 0 for the model to fill). */
void latup_arena_plan(const latup_arena *a, latup_mem_plan *p);
/* The plan, one line per take, then the arena, weights and output: what --verbose prints. */
void latup_mem_plan_print(const latup_mem_plan *p, const char *title, FILE *f);

#endif
