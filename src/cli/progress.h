/* progress.h — the progress line `latup upscale|decode|run` keeps on a terminal: a percentage and
 * an estimate of the time left, rewritten in place, built on the library's progress callback
 * (latup_progress_fn) like any other caller's. It needs the C library only, so a test can compile
 * it in and drive it with its own clock. */
#ifndef LATUP_CLI_PROGRESS_H
#define LATUP_CLI_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Short calls show nothing: the line would only flicker. */
#define CLI_PROGRESS_DELAY 1.0
/* A line is rewritten at most this often (seconds): a terminal over ssh should not scroll bytes. */
#define CLI_PROGRESS_EVERY 0.2

/* "latup: <label>42%, about 1 min 05 s left" into buf (n bytes, always terminated): the
 * percentage rounded down (100% only when done == total), the time left extrapolated from the
 * elapsed seconds at the rate so far, rounded up ("about 1 s left", never 0). done is clamped to
 * 0..total; done 0 or total 0 gives no estimate. Returns the length written (at most n - 1). */
size_t cli_progress_format(char *buf, size_t n, const char *label, int64_t done, int64_t total, double elapsed);

typedef struct {
    FILE *f;          /* where the line goes (stderr on a terminal); NULL: nothing is ever shown */
    char label[32];   /* "[2/3] " when a command has several inputs */
    double start;     /* when the call began */
    double shown_at;  /* when the line was last written (< 0: never) */
    size_t width;     /* characters of the line now on screen (0: none) */
} cli_progress;

/* A call starts at `now` (seconds on any clock the caller keeps for this call). */
void cli_progress_begin(cli_progress *p, FILE *f, const char *label, double now);
/* done of total steps at `now`: writes the line once the call has run CLI_PROGRESS_DELAY
 * seconds, then at most every CLI_PROGRESS_EVERY seconds, "\r" first and padded over a longer
 * line before it. */
void cli_progress_at(cli_progress *p, int64_t done, int64_t total, double now);
/* The latup_progress_fn: cli_progress_at on the monotonic clock, user a cli_progress begun on
 * cli_progress_now(). Never asks the call to stop (SIGINT does that for the CLI). */
int cli_progress_cb(void *user, int64_t done, int64_t total);
/* Clears the line when one is shown, so the next line starts at column 0. */
void cli_progress_end(cli_progress *p);
/* The monotonic clock cli_progress_cb reads, in seconds. */
double cli_progress_now(void);

#endif
