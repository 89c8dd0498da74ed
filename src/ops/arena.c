/* arena.c — the counting/carving arena (arena.h): a stack of takes over one allocation, with
 * guard floats after each take when guards are on (and each take filled with a NaN then); the allocation and the guards go through the
 * arena's memory operations (host memory here, device memory from src/cuda/gpu_ops.c). */
#include "ops/arena.h"

#include <stdlib.h>
#include <string.h>

/* A NaN with a payload no computation produces: compared bit for bit. */
static const uint32_t GUARD_BITS = 0x7fa5c0deu;
/* With guards on, every take starts out as this NaN (another payload): a buffer read before it is
 * written, or an accumulation whose zeroing was dropped, makes NaN in the result instead of
 * whatever the previous take left there (often zeros, or the right values by luck). */
static const uint32_t POISON_BITS = 0x7fbadbadu;

/* ---- host memory: the default operations ---------------------------------------------------------- */
static float *host_alloc(size_t floats, const char *what) { return latup_alloc_floats(floats, what); }
static void host_free(float *base) { free(base); }
static int host_fill(float *x, size_t n, uint32_t bits) {
    for (size_t i = 0; i < n; i++) memcpy(x + i, &bits, sizeof bits);
    return 0;
}
static int host_intact(const float *x, size_t n, uint32_t bits) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(x + i, &bits, sizeof bits) != 0) return 0;
    return 1;
}
static const latup_arena_ops HOST_OPS = {host_alloc, host_free, host_fill, host_intact};

static const latup_arena_ops *ops_of(const latup_arena *a) { return a->ops ? a->ops : &HOST_OPS; }

void latup_arena_begin_count_on(latup_arena *a, const latup_arena_ops *ops, int guards) {
    memset(a, 0, sizeof *a);
    a->counting = 1;
    a->ops = ops;
    a->guard = guards ? LATUP_ARENA_GUARD : 0;
}

void latup_arena_begin_count(latup_arena *a) { latup_arena_begin_count_on(a, NULL, LATUP_ARENA_GUARD_FLOATS > 0); }

/* A take or slot of `floats` and its guard: rounded to 16 floats, then the guard floats. */
static size_t step_for(const latup_arena *a, size_t floats) { return latup_round16(floats) + a->guard; }

/* Writes the guard after the buffer of `floats` at off; 1 if the memory could not be written. */
static int guard_fill(latup_arena *a, size_t off, size_t floats) {
    if (a->guard == 0) return 0;
    return ops_of(a)->fill(a->base + off + floats, step_for(a, floats) - floats, GUARD_BITS) != 0;
}

latup_status latup_arena_begin_run(latup_arena *a, const char *what) {
    if (a->st != LATUP_OK) return a->st;
    /* the slots first, at their counted capacities; the stack above them */
    size_t off = 0;
    for (int i = 0; i < a->n_slots; i++) {
        a->slots[i].off = off;
        off += step_for(a, a->slots[i].floats);
    }
    a->slot_floats = off;
    const size_t total = a->slot_floats + a->peak;
    a->base = ops_of(a)->alloc(total > 0 ? total : 16, what);
    if (!a->base) return LATUP_E_NOMEM;
    a->cap = total;
    a->counting = 0;
    latup_arena_rewind(a);
    for (int i = 0; i < a->n_slots; i++)
        if (guard_fill(a, a->slots[i].off, a->slots[i].floats))
            return a->st = latup_fail(LATUP_E_DEVICE, "arena: cannot write the guard after slot '%s' %d (%s)",
                                      a->slots[i].name, i, what);
    return LATUP_OK;
}

void latup_arena_rewind(latup_arena *a) {
    a->top = a->slot_floats;
    a->n_live = 0;
}

void latup_arena_free(latup_arena *a) {
    if (a->base) ops_of(a)->free(a->base);
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
    const size_t step = step_for(a, floats);
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
    if (a->top - a->slot_floats > a->peak) a->peak = a->top - a->slot_floats;
    if (a->counting) {
        remember_kind(a, name, floats);
        return NULL;
    }
    if (guard_fill(a, off, floats) || (a->guard > 0 && ops_of(a)->fill(a->base + off, floats, POISON_BITS) != 0)) {
        a->st = latup_fail(LATUP_E_DEVICE, "arena: cannot write the guard after buffer '%s'", name);
        return NULL;
    }
    return a->base + off;
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

/* One slot rule for both devices: slots 0..n_slots-1 sit in order below the stack, each as large
 * as its largest counted write, an unused one below a used one keeping just its guard. The CUDA
 * path's own arena had skipped unused slots and listed slots among the takes; neither mattered to
 * it (its passes use every slot below the highest, and the plan lists slots by name anyway), so
 * the GPU now follows this rule and its plans read like the CPU's. */
float *latup_arena_slot(latup_arena *a, int i, size_t floats, const char *name) {
    if (a->st != LATUP_OK) return NULL;
    if (i < 0 || i >= LATUP_ARENA_MAX_SLOTS) {
        a->st = latup_fail(LATUP_E_INTERNAL, "arena: slot %d for '%s' out of range", i, name);
        return NULL;
    }
    if (floats > SIZE_MAX / 8 - 64) {
        a->st = latup_fail(LATUP_E_INPUT, "buffer '%s' would need %zu floats: the input is too large", name, floats);
        return NULL;
    }
    if (a->counting) {
        if (i >= a->n_slots) {
            for (int k = a->n_slots; k <= i; k++) a->slots[k].floats = 0, a->slots[k].name = name;
            a->n_slots = i + 1;
        }
        if (floats > a->slots[i].floats) a->slots[i].floats = floats;
        return NULL;
    }
    if (i >= a->n_slots || floats > a->slots[i].floats) {
        a->st = latup_fail(LATUP_E_INTERNAL, "arena: '%s' needs %zu floats in slot %d, which holds %zu "
                           "(the run did not replay the counted writes)", name, floats, i,
                           i < a->n_slots ? a->slots[i].floats : 0);
        return NULL;
    }
    return a->base + a->slots[i].off;
}

size_t latup_arena_mark(const latup_arena *a) { return (size_t)a->n_live; }

/* Guard of the buffer of `floats` at off: the floats between its end and the next buffer's start. */
static int guard_ok_at(const latup_arena *a, size_t off, size_t floats) {
    if (a->counting || !a->base || a->guard == 0) return 1;
    return ops_of(a)->intact(a->base + off + floats, step_for(a, floats) - floats, GUARD_BITS);
}

static int guard_ok(const latup_arena *a, int i) { return guard_ok_at(a, a->live[i].off, a->live[i].floats); }

static void guard_fail_named(latup_arena *a, const char *name, size_t floats) {
    if (a->st == LATUP_OK)
        a->st = latup_fail(LATUP_E_INTERNAL, "arena: the guard after buffer '%s' (%zu floats) was overwritten", name,
                           floats);
}

static void guard_fail(latup_arena *a, int i) { guard_fail_named(a, a->live[i].name, a->live[i].floats); }

void latup_arena_release(latup_arena *a, size_t mark) {
    while ((size_t)a->n_live > mark) {
        const int i = a->n_live - 1;
        if (a->guard > 0 && !guard_ok(a, i)) guard_fail(a, i);
        a->top = a->live[i].off;
        a->n_live--;
    }
}

latup_status latup_arena_check(latup_arena *a) {
    if (a->guard > 0)
        for (int i = 0; i < a->n_slots; i++)
            if (!guard_ok_at(a, a->slots[i].off, a->slots[i].floats)) {
                guard_fail_named(a, a->slots[i].name, a->slots[i].floats);
                return a->st;
            }
    if (a->guard > 0)
        for (int i = 0; i < a->n_live; i++)
            if (!guard_ok(a, i)) {
                guard_fail(a, i);
                break;
            }
    return a->st;
}

size_t latup_arena_bytes(const latup_arena *a) {
    size_t slots = 0;
    for (int i = 0; i < a->n_slots; i++) slots += step_for(a, a->slots[i].floats);
    return (slots + a->peak) * sizeof(float);
}

void latup_arena_plan(const latup_arena *a, latup_mem_plan *p) {
    memset(p, 0, sizeof *p);
    p->arena = latup_arena_bytes(a);
    for (int i = 0; i < a->n_slots && p->n_takes < LATUP_PLAN_MAX_TAKES; i++, p->n_takes++) {
        snprintf(p->takes[p->n_takes].name, sizeof p->takes[0].name, "%s %d", a->slots[i].name, i);
        p->takes[p->n_takes].bytes = a->slots[i].floats * sizeof(float);
        p->takes[p->n_takes].count = 1;
    }
    for (int i = 0; i < a->n_kinds && p->n_takes < LATUP_PLAN_MAX_TAKES; i++, p->n_takes++) {
        snprintf(p->takes[p->n_takes].name, sizeof p->takes[0].name, "%s", a->kinds[i].name);
        p->takes[p->n_takes].bytes = a->kinds[i].floats * sizeof(float);
        p->takes[p->n_takes].count = a->kinds[i].count;
    }
}

void latup_mem_plan_print(const latup_mem_plan *p, const char *title, FILE *f) {
    const double MiB = 1024.0 * 1024.0;
    fprintf(f, "%s\n", title);
    for (int i = 0; i < p->n_takes; i++) {
        const latup_plan_take *k = &p->takes[i];
        if (k->count > 1)
            fprintf(f, "  %-40s %10.2f MiB  (largest of %ld takes)\n", k->name, k->bytes / MiB, k->count);
        else
            fprintf(f, "  %-40s %10.2f MiB\n", k->name, k->bytes / MiB);
    }
    fprintf(f, "  %-40s %10.2f MiB  (the high-water mark of the takes)\n", "arena", p->arena / MiB);
    if (p->weights) fprintf(f, "  %-40s %10.2f MiB\n", "weights (fp32)", p->weights / MiB);
    if (p->output) fprintf(f, "  %-40s %10.2f MiB  (one image)\n", "output", p->output / MiB);
}
