/* progress.c — the CLI's progress line on a terminal (progress.h): formatting, and when to write
 * it and clear it. */
#define _POSIX_C_SOURCE 200809L
#include "progress.h"

#include <math.h>
#include <string.h>
#include <time.h>

/* "about 42 s", "about 1 min 05 s", "about 2 h 07 min": seconds rounded up, so an estimate never
 * reads 0 */
static void eta_text(char *buf, size_t n, double left) {
    const double s = ceil(left < 1 ? 1 : left);
    if (s < 60) snprintf(buf, n, "about %.0f s", s);
    else if (s < 3600) snprintf(buf, n, "about %.0f min %02.0f s", floor(s / 60), fmod(s, 60));
    else if (s < 360000) snprintf(buf, n, "about %.0f h %02.0f min", floor(s / 3600), floor(fmod(s, 3600) / 60));
    else snprintf(buf, n, "more than 100 h");
}

size_t cli_progress_format(char *buf, size_t n, const char *label, int64_t done, int64_t total, double elapsed) {
    if (!buf || n == 0) return 0;
    if (done < 0) done = 0;
    if (total < 0) total = 0;
    if (done > total) done = total;
    /* in double: done * 100 overflows int64_t long before a call has that many steps */
    const int pct = total > 0 ? (int)floor(100.0 * (double)done / (double)total) : 0;
    char eta[32] = "";
    if (done > 0 && done < total && elapsed > 0) {
        char t[24];
        eta_text(t, sizeof t, elapsed * (double)(total - done) / (double)done);
        snprintf(eta, sizeof eta, ", %s left", t);
    }
    int len = snprintf(buf, n, "latup: %s%d%%%s", label ? label : "", pct, eta);
    if (len < 0) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t)len < n ? (size_t)len : n - 1;
}

void cli_progress_begin(cli_progress *p, FILE *f, const char *label, double now) {
    memset(p, 0, sizeof *p);
    p->f = f;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->start = now;
    p->shown_at = -1;
}

void cli_progress_at(cli_progress *p, int64_t done, int64_t total, double now) {
    if (!p->f || now - p->start < CLI_PROGRESS_DELAY) return;
    if (p->shown_at >= 0 && now - p->shown_at < CLI_PROGRESS_EVERY) return;
    char line[128];
    const size_t len = cli_progress_format(line, sizeof line, p->label, done, total, now - p->start);
    /* spaces over what a longer line before left on screen */
    fprintf(p->f, "\r%s%*s", line, p->width > len ? (int)(p->width - len) : 0, "");
    fflush(p->f);
    if (len > p->width) p->width = len;
    p->shown_at = now;
}

double cli_progress_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_progress_cb(void *user, int64_t done, int64_t total) {
    cli_progress_at(user, done, total, cli_progress_now());
    return 0;
}

void cli_progress_end(cli_progress *p) {
    if (p->f && p->width > 0) {
        fprintf(p->f, "\r%*s\r", (int)p->width, "");
        fflush(p->f);
    }
    p->width = 0;
    p->shown_at = -1;
}
