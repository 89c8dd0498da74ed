/* compare.c — `latup compare DIR_A DIR_B`: two folders of .npy tensors (latup --dump output, or a
 * PyTorch reference dumped with forward hooks) compared tensor by tensor in forward order, so a
 * porter sees the first layer where their port diverges. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    char *name;     /* relative path without ".npy" */
    double mtime;
    int order;      /* position in dump_order.txt, or -1 */
} entry;

typedef struct {
    entry *e;
    int n, cap;
} listing;

static int add_entry(listing *l, const char *name, double mtime) {
    if (l->n == l->cap) {
        int ncap = l->cap ? 2 * l->cap : 64;
        entry *ne = realloc(l->e, (size_t)ncap * sizeof *ne);
        if (!ne) return 0;
        l->e = ne, l->cap = ncap;
    }
    if (!(l->e[l->n].name = strdup(name))) return 0;
    l->e[l->n].mtime = mtime;
    l->e[l->n].order = -1;
    l->n++;
    return 1;
}

/* Every *.npy below root/rel (folders too, a few levels deep). */
static latup_status scan(listing *l, const char *root, const char *rel, int depth) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (!d) return latup_set_error(LATUP_E_IO, "%s: cannot read the directory", dir);
    struct dirent *de;
    latup_status st = LATUP_OK;
    while (!st && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char sub[4096], full[8200];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
        snprintf(full, sizeof full, "%s/%s", root, sub);
        struct stat sb;
        if (stat(full, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) {
            if (depth < 8) st = scan(l, root, sub, depth + 1);
        } else if (cli_ends_with(sub, ".npy")) {
            sub[strlen(sub) - 4] = '\0';
            if (!add_entry(l, sub, (double)sb.st_mtim.tv_sec + 1e-9 * (double)sb.st_mtim.tv_nsec))
                st = latup_set_error(LATUP_E_NOMEM, "out of memory listing %s", dir);
        }
    }
    closedir(d);
    return st;
}

static int find(const listing *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->e[i].name, name)) return i;
    return -1;
}

/* Forward order: dump_order.txt where it lists a tensor, then modification time, then name. */
static void read_order(listing *l, const char *root) {
    char p[4200], line[4096];
    snprintf(p, sizeof p, "%s/dump_order.txt", root);
    FILE *f = fopen(p, "r");
    if (!f) return;
    for (int k = 0; fgets(line, sizeof line, f); k++) {
        line[strcspn(line, "\n")] = '\0';
        int i = find(l, line);
        if (i >= 0 && l->e[i].order < 0) l->e[i].order = k;
    }
    fclose(f);
}

static int by_order(const void *pa, const void *pb) {
    const entry *a = pa, *b = pb;
    if ((a->order >= 0) != (b->order >= 0)) return a->order >= 0 ? -1 : 1;
    if (a->order != b->order) return a->order < b->order ? -1 : 1;
    if (a->mtime != b->mtime) return a->mtime < b->mtime ? -1 : 1;
    return strcmp(a->name, b->name);
}

static void free_listing(listing *l) {
    for (int i = 0; i < l->n; i++) free(l->e[i].name);
    free(l->e);
}

typedef struct {
    double max_abs, max_mag;
    int64_t n_nonfinite_mismatch;
} diff;

static diff compare_data(const float *a, const float *b, int64_t n) {
    diff d = {0, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) {
            /* the same NaN/Inf on both sides is agreement; anything else is a mismatch */
            if (!(isnan(a[i]) && isnan(b[i])) && a[i] != b[i]) d.n_nonfinite_mismatch++;
            continue;
        }
        double e = fabs((double)a[i] - (double)b[i]);
        if (e > d.max_abs) d.max_abs = e;
        double m = fmax(fabs((double)a[i]), fabs((double)b[i]));
        if (m > d.max_mag) d.max_mag = m;
    }
    return d;
}

int cli_compare(int argc, char **argv) {
    cli_args a;
    int rc = cli_parse(&CLI_CMD_COMPARE, argc, argv, &a, stdout, stderr);
    if (rc >= 0) return rc;
    const char *da = a.pos[0], *db = a.pos[1];
    const double tol = cli_given(&a, "--tol") ? cli_get(&a, "--tol")->real : 1e-4;
    const double atol = cli_given(&a, "--atol") ? cli_get(&a, "--atol")->real : 0.0;
    const int quiet = cli_given(&a, "--quiet");
    listing la = {0}, lb = {0};
    latup_status st = scan(&la, da, "", 0);
    if (!st) st = scan(&lb, db, "", 0);
    if (st) {
        free_listing(&la);
        free_listing(&lb);
        return cli_fail(st);
    }
    read_order(&la, da);
    qsort(la.e, (size_t)la.n, sizeof *la.e, by_order);

    int n_both = 0, n_over = 0;
    const char *first_over = NULL;
    for (int i = 0; i < la.n && !st; i++) {
        const char *name = la.e[i].name;
        if (find(&lb, name) < 0) continue;
        char pa[8200], pb[8200], sa[96], sb[96];
        snprintf(pa, sizeof pa, "%s/%s.npy", da, name);
        snprintf(pb, sizeof pb, "%s/%s.npy", db, name);
        latup_tensor ta, tb;
        if ((st = latup_npy_read(pa, &ta))) break;
        if ((st = latup_npy_read(pb, &tb))) {
            latup_tensor_free(&ta);
            break;
        }
        n_both++;
        latup_shape_str(sa, sizeof sa, ta.ndim, ta.shape);
        latup_shape_str(sb, sizeof sb, tb.ndim, tb.shape);
        int ok;
        if (latup_tensor_numel(&ta) != latup_tensor_numel(&tb) || strcmp(sa, sb)) {
            ok = 0;
            printf("NOT OK  %-56s shape %s vs %s\n", name, sa, sb);
        } else {
            diff d = compare_data(ta.data, tb.data, latup_tensor_numel(&ta));
            double rel = d.max_mag > 0 ? d.max_abs / d.max_mag : 0.0;
            ok = !d.n_nonfinite_mismatch && (rel <= tol || d.max_abs <= atol);
            if (!ok || !quiet) {
                printf("%-7s %-56s %-18s max abs %.3e  rel %.3e", ok ? "OK" : "NOT OK", name, sa, d.max_abs, rel);
                if (d.n_nonfinite_mismatch) printf("  (%lld NaN/Inf mismatches)", (long long)d.n_nonfinite_mismatch);
                printf("\n");
            }
        }
        if (!ok && !n_over++) first_over = name;
        latup_tensor_free(&ta);
        latup_tensor_free(&tb);
    }
    if (!st) {
        int only_a = 0, only_b = 0;
        for (int i = 0; i < la.n; i++)
            if (find(&lb, la.e[i].name) < 0) printf("only in %s: %s\n", da, la.e[i].name), only_a++;
        for (int i = 0; i < lb.n; i++)
            if (find(&la, lb.e[i].name) < 0) printf("only in %s: %s\n", db, lb.e[i].name), only_b++;
        if (!n_both) {
            st = latup_set_error(LATUP_E_INPUT, "%s and %s have no tensor (.npy) in common", da, db);
        } else {
            printf("compare: %d tensors in both, %d over the tolerance (rel %g, abs %g)%s%s; %d only in %s, %d only in %s\n",
                   n_both, n_over, tol, atol, first_over ? "; first: " : "", first_over ? first_over : "", only_a, da,
                   only_b, db);
        }
    }
    fflush(stdout);
    rc = st ? cli_fail(st) : n_over ? CLI_EXIT_DIFFERS : 0;
    free_listing(&la);
    free_listing(&lb);
    return rc;
}
