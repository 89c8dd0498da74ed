/* test_fileio.c — whole-file reads (plain, gzip, concatenated gzip, corrupt/truncated gzip, the
 * size cap against a gzip bomb, OS errors), the atomic writer (commit, abort, replacement,
 * failures leave nothing behind, short temporary names next to 255-byte destinations), the
 * temporaries a signal handler removes, and the output sets' states (a call in the wrong state
 * is a usage error that touches no committed file) and argument checks. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "io/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>



/* Names in the directory, to prove no temporary file is left behind. */
static int count_entries(void) {
    DIR *d = opendir(g_dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}



static int each_setup(void **state) {
    (void)state;
    return tmpdir_clear();
}

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void append_gzip(const char *path, const void *b, size_t n) {
    gzFile g = gzopen(path, "ab6");
    assert_non_null(g);
    if (n) assert_int_equal(gzwrite(g, b, (unsigned)n), (int)n);
    assert_int_equal(gzclose(g), Z_OK);
}

static uint8_t *pattern(size_t n, uint32_t seed) {
    uint8_t *b = malloc(n ? n : 1);
    uint32_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        /* half random, half runs: compressible but not trivially */
        b[i] = (i / 4096) % 2 ? (uint8_t)x : (uint8_t)(i / 64);
    }
    return b;
}

static void read_expect(const char *path, size_t max, const uint8_t *want, size_t n) {
    uint8_t *buf;
    size_t len;
    latup_status st = latup_read_file(path, max, &buf, &len);
    if (st) print_error("%s\n", latup_last_error());
    assert_int_equal(st, LATUP_OK);
    assert_non_null(buf);
    assert_int_equal(len, n);
    if (n) assert_memory_equal(buf, want, n);
    free(buf);
}

static void read_fails(const char *path, size_t max, latup_status want, const char *word) {
    uint8_t *buf = (uint8_t *)1;
    size_t len = 1;
    latup_status st = latup_read_file(path, max, &buf, &len);
    if (st != want || !strstr(latup_last_error(), word)) {
        print_error("status %d, message \"%s\"; wanted %d and \"%s\"\n", st, latup_last_error(), want, word);
        fail();
    }
    assert_null(buf);
    assert_int_equal(len, 0);
}

/* ---- reading ---------------------------------------------------------------------------------- */

static void test_read_plain(void **state) {
    (void)state;
    size_t n = 3 * 100000 + 17; /* more than one 256 KiB first chunk */
    uint8_t *b = pattern(n, 7);
    write_bytes(tmp_path("p.bin"), b, n);
    read_expect(tmp_path("p.bin"), SIZE_MAX, b, n);
    read_expect(tmp_path("p.bin"), n, b, n); /* exactly the cap is fine */
    read_fails(tmp_path("p.bin"), n - 1, LATUP_E_INPUT, "is larger than the limit");
    write_bytes(tmp_path("empty.bin"), "", 0);
    read_expect(tmp_path("empty.bin"), 16, NULL, 0);
    write_bytes(tmp_path("one.bin"), "\x1f", 1); /* half a gzip magic is plain data */
    read_expect(tmp_path("one.bin"), 16, (const uint8_t *)"\x1f", 1);
    free(b);
}

/* A regular file over the limit is refused from its size, before a byte of it is read: a sparse
 * file of 1 GiB + 1 bytes against a 1 GiB limit, refused with the process's peak RSS grown by
 * less than 512 MiB (reading it first takes the whole GiB; ASan's own allocator adds about 128
 * MiB in SANITIZE=1 builds, the plain build 0). */
static void test_refused_from_size(void **state) {
    (void)state;
    const char *p = tmp_path("sparse.bin");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, ((off_t)1 << 30) + 1), 0);
    close(fd);
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    read_fails(p, (size_t)1 << 30, LATUP_E_INPUT, "is larger than the limit of 1073741824 bytes");
    getrusage(RUSAGE_SELF, &r1);
    const long grew_kb = r1.ru_maxrss - r0.ru_maxrss;
    printf("a sparse file of 1 GiB + 1 bytes against a 1 GiB limit: refused, peak RSS grew %ld KiB (want < 524288) %s\n",
           grew_kb, grew_kb < 524288 ? "OK" : "NOT OK");
    assert_true(grew_kb < 524288);
    unlink(p);
}

static void test_read_gzip(void **state) {
    (void)state;
    size_t n = 2 * 1000 * 1000 + 3;
    uint8_t *b = pattern(n, 11);
    append_gzip(tmp_path("g.gz"), b, n);
    read_expect(tmp_path("g.gz"), SIZE_MAX, b, n);
    read_expect(tmp_path("g.gz"), n, b, n);
    read_fails(tmp_path("g.gz"), n - 1, LATUP_E_INPUT, "inflates to larger than the limit");
    /* concatenated members read as one stream, like gzip -d */
    append_gzip(tmp_path("g.gz"), b, 1000);
    uint8_t *both = malloc(n + 1000);
    memcpy(both, b, n);
    memcpy(both + n, b, 1000);
    read_expect(tmp_path("g.gz"), SIZE_MAX, both, n + 1000);
    free(both);
    /* an empty member */
    append_gzip(tmp_path("e.gz"), NULL, 0);
    read_expect(tmp_path("e.gz"), 16, NULL, 0);
    free(b);
}

/* 64 MiB of zeros compress to ~64 KiB; a 1 MiB cap must stop inflation early. */
static void test_gzip_bomb(void **state) {
    (void)state;
    size_t n = (size_t)64 << 20;
    uint8_t *z = calloc(1, n);
    append_gzip(tmp_path("bomb.gz"), z, n);
    free(z);
    read_fails(tmp_path("bomb.gz"), (size_t)1 << 20, LATUP_E_INPUT,
               "inflates to larger than the limit of 1048576");
}

static void test_gzip_corrupt(void **state) {
    (void)state;
    size_t n = 100000;
    uint8_t *b = pattern(n, 3);
    append_gzip(tmp_path("c.gz"), b, n);
    FILE *f = fopen(tmp_path("c.gz"), "rb");
    uint8_t gz[200000];
    size_t gl = fread(gz, 1, sizeof gz, f);
    fclose(f);

    /* cut anywhere past the magic: truncated or corrupt, never success */
    static const size_t cuts[] = {2, 3, 10, 11, 100, 5000};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        write_bytes(tmp_path("cut.gz"), gz, cuts[k]);
        read_fails(tmp_path("cut.gz"), SIZE_MAX, LATUP_E_INPUT, "gzip");
    }
    write_bytes(tmp_path("cut.gz"), gz, gl - 1); /* only the trailer is short */
    read_fails(tmp_path("cut.gz"), SIZE_MAX, LATUP_E_INPUT, "truncated gzip data");
    /* a flipped byte in the CRC */
    gz[gl - 6] ^= 0x55;
    write_bytes(tmp_path("crc.gz"), gz, gl);
    read_fails(tmp_path("crc.gz"), SIZE_MAX, LATUP_E_INPUT, "corrupt gzip data");
    gz[gl - 6] ^= 0x55;
    /* garbage after a complete member */
    memcpy(gz + gl, "junk", 4);
    write_bytes(tmp_path("junk.gz"), gz, gl + 4);
    read_fails(tmp_path("junk.gz"), SIZE_MAX, LATUP_E_INPUT, "gzip");
    /* an unknown compression method in the header */
    gz[2] = 7;
    write_bytes(tmp_path("meth.gz"), gz, gl);
    read_fails(tmp_path("meth.gz"), SIZE_MAX, LATUP_E_INPUT, "corrupt gzip data");
    free(b);
}

static void test_read_os_errors(void **state) {
    (void)state;
    read_fails(tmp_path("absent"), SIZE_MAX, LATUP_E_IO, "absent: cannot open: No such file or directory");
    read_fails(g_dir, SIZE_MAX, LATUP_E_IO, "Is a directory");
    if (geteuid() != 0) { /* root reads anything */
        write_bytes(tmp_path("locked"), "x", 1);
        chmod(tmp_path("locked"), 0);
        read_fails(tmp_path("locked"), SIZE_MAX, LATUP_E_IO, "Permission denied");
    }
}

/* ---- edges and inputs that are not regular files ------------------------------------------------ */

/* gzip output of exactly max_bytes is accepted and one byte more refused, with the 8-byte gzip
 * trailer split across two LATUP_READ_CHUNK reads (stored deflate blocks make the compressed size
 * predictable enough to search for). */
static void test_gzip_max_across_chunk(void **state) {
    (void)state;
    const char *p = tmp_path("edge.gz");
    uint8_t *b = pattern(LATUP_READ_CHUNK, 5);
    size_t found = 0;
    for (size_t n = LATUP_READ_CHUNK - 200; n < LATUP_READ_CHUNK && !found; n++) {
        unlink(p);
        gzFile g = gzopen(p, "wb0"); /* level 0: stored blocks */
        assert_int_equal(gzwrite(g, b, (unsigned)n), (int)n);
        assert_int_equal(gzclose(g), Z_OK);
        struct stat sb;
        assert_int_equal(stat(p, &sb), 0);
        const size_t trailer = (size_t)sb.st_size - 8; /* where the trailer starts */
        if (trailer > LATUP_READ_CHUNK - 8 && trailer + 1 < LATUP_READ_CHUNK) found = n; /* n+1 straddles too */
    }
    assert_true(found > 0);
    for (int extra = 0; extra < 2; extra++) {
        const size_t n = found + (size_t)extra;
        unlink(p);
        gzFile g = gzopen(p, "wb0");
        assert_int_equal(gzwrite(g, b, (unsigned)n), (int)n);
        assert_int_equal(gzclose(g), Z_OK);
        if (extra)
            read_fails(p, found, LATUP_E_INPUT, "inflates to larger than the limit");
        else
            read_expect(p, found, b, n);
    }
    printf("  %zu bytes inflated from a member whose trailer spans the %zu-byte read boundary: exactly the "
           "limit reads, one more is refused\n", found, (size_t)LATUP_READ_CHUNK);
    free(b);
}

static pid_t feed(int fd, const uint8_t *b, size_t n) {
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGPIPE, SIG_IGN);
        while (n > 0) {
            ssize_t k = write(fd, b, n);
            if (k <= 0) break;
            b += k, n -= (size_t)k;
        }
        _exit(0);
    }
    return pid;
}

/* "-" reads standard input, named "<stdin>" in messages. */
static void test_stdin(void **state) {
    (void)state;
    uint8_t *b = pattern(200000, 9);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t w = feed(fds[1], b, 200000);
    close(fds[1]);
    int saved = dup(0);
    dup2(fds[0], 0), close(fds[0]);
    read_expect("-", SIZE_MAX, b, 200000);
    waitpid(w, NULL, 0);
    assert_int_equal(pipe(fds), 0);
    w = feed(fds[1], b, 100);
    close(fds[1]);
    dup2(fds[0], 0), close(fds[0]);
    read_fails("-", 99, LATUP_E_INPUT, "<stdin>: is larger than the limit of 99 bytes");
    waitpid(w, NULL, 0);
    dup2(saved, 0), close(saved);
    free(b);
}

static int sniff_abc(const uint8_t *h, size_t n) { return n >= 3 && memcmp(h, "abc", 3) == 0; }
/* "abc" + one length byte + that many bytes */
static latup_status size_abc(const uint8_t *h, size_t n, int at_eof, const char *path, latup_size *s) {
    (void)at_eof, (void)path;
    if (n < 4) {
        s->need = 4;
        return LATUP_OK;
    }
    s->known = 1;
    s->total = 4 + (uint64_t)h[3];
    return LATUP_OK;
}
static const latup_file_format k_abc = {"abc (its own length)", 3, sniff_abc, size_abc, 1000, NULL};

/* A FIFO is opened once and read once: the writer writes one copy and leaves, so a second open
 * would block (the alarm turns that into a failure). Streams are read as far as the header says
 * and one byte more is an error; content no format sniffs is refused from its first bytes. */
static void test_fifo_and_streams(void **state) {
    (void)state;
    const char *f = tmp_path("fifo");
    assert_int_equal(mkfifo(f, 0600), 0);
    const latup_file_format *fmts[] = {&k_abc};
    static const uint8_t good[] = "abc\x05hello", more[] = "abc\x05hello!", other[] = "xyz\x05hello";
    const struct {
        const uint8_t *b;
        size_t n;
        const char *phrase; /* NULL: reads */
    } cases[] = {{good, 9, NULL},
                 {more, 10, "continues past the 9 bytes its header describes"},
                 {other, 9, "not an abc file: expected abc (its own length), found bytes 78 79 7a 05 68 65 6c 6c 6f"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fflush(stdout);
        pid_t w = fork();
        assert_true(w >= 0);
        if (w == 0) {
            int fd = open(f, O_WRONLY);
            if (fd >= 0 && write(fd, cases[c].b, cases[c].n) < 0) _exit(1);
            _exit(0);
        }
        alarm(30);
        latup_input in;
        latup_status st = latup_input_open(&in, f, fmts, 1, "an abc file", LATUP_INPUT_MAP);
        alarm(0);
        printf("  FIFO case %zu: %s\n", c, st ? latup_last_error() : "read");
        if (!cases[c].phrase) {
            assert_int_equal(st, LATUP_OK);
            assert_int_equal(in.len, 9);
            assert_false(in.mapped); /* a FIFO cannot be mapped */
            assert_memory_equal(in.data, good, 9);
            latup_input_close(&in);
        } else {
            assert_int_equal(st, LATUP_E_INPUT);
            assert_non_null(strstr(latup_last_error(), cases[c].phrase));
        }
        kill(w, SIGKILL), waitpid(w, NULL, 0);
    }
    /* an endless device is refused after its first bytes */
    latup_input in;
    assert_int_equal(latup_input_open(&in, "/dev/zero", fmts, 1, "an abc file", 0), LATUP_E_INPUT);
    assert_non_null(strstr(latup_last_error(), "/dev/zero: not an abc file"));
    /* a regular file is mapped on request, a gzip'd one read */
    write_bytes(tmp_path("r.abc"), good, 9);
    assert_int_equal(latup_input_open(&in, tmp_path("r.abc"), fmts, 1, "an abc file", LATUP_INPUT_MAP), LATUP_OK);
    assert_true(in.mapped && !in.gzip && in.len == 9 && in.format == &k_abc);
    latup_input_close(&in);
    append_gzip(tmp_path("r.abc.gz"), good, 9);
    assert_int_equal(latup_input_open(&in, tmp_path("r.abc.gz"), fmts, 1, "an abc file", LATUP_INPUT_MAP), LATUP_OK);
    assert_true(!in.mapped && in.gzip && in.len == 9);
    assert_memory_equal(in.data, good, 9);
    latup_input_close(&in);
}

/* ---- atomic writing --------------------------------------------------------------------------- */

static void test_atomic_commit(void **state) {
    (void)state;
    const char *p = tmp_path("out.bin");
    latup_atomic_file af;
    assert_int_equal(latup_atomic_open(&af, p), LATUP_OK);
    /* the temporary lives next to the target (a short name in its directory), the target does
     * not exist yet */
    printf("  temporary for %s: %s\n", p, af.tmp_path);
    assert_int_equal(strncmp(af.tmp_path, g_dir, strlen(g_dir)), 0);
    assert_int_equal(af.tmp_path[strlen(g_dir)], '/');
    assert_int_equal(strncmp(af.tmp_path + strlen(g_dir) + 1, "latup-", 6), 0);
    assert_int_equal(strlen(af.tmp_path + strlen(g_dir) + 1), strlen("latup-XXXXXX.tmp"));
    assert_int_equal(access(af.tmp_path, F_OK), 0);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(latup_atomic_write(&af, "hello ", 6), LATUP_OK);
    assert_int_equal(latup_atomic_write(&af, "", 0), LATUP_OK);
    assert_int_equal(latup_atomic_write(&af, "world", 5), LATUP_OK);
    assert_int_equal(latup_atomic_commit(&af), LATUP_OK);
    read_expect(p, 64, (const uint8_t *)"hello world", 11);
    assert_int_equal(count_entries(), 1);
    /* the mode a plain fopen would give, not mkstemp's 0600 */
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(sb.st_mode & 0777, 0666 & ~mask);
    /* abort after commit is a no-op, commit after commit an error */
    latup_atomic_abort(&af);
    assert_int_equal(latup_atomic_commit(&af), LATUP_E_INTERNAL);
    assert_int_equal(latup_atomic_write(&af, "x", 1), LATUP_E_INTERNAL);

    /* replacing an existing file */
    assert_int_equal(latup_atomic_open(&af, p), LATUP_OK);
    assert_int_equal(latup_atomic_write(&af, "new", 3), LATUP_OK);
    read_expect(p, 64, (const uint8_t *)"hello world", 11); /* old content until commit */
    assert_int_equal(latup_atomic_commit(&af), LATUP_OK);
    read_expect(p, 64, (const uint8_t *)"new", 3);
    assert_int_equal(count_entries(), 1);
}

static void test_atomic_abort(void **state) {
    (void)state;
    const char *p = tmp_path("gone.bin");
    latup_atomic_file af;
    assert_int_equal(latup_atomic_open(&af, p), LATUP_OK);
    assert_int_equal(latup_atomic_write(&af, "partial", 7), LATUP_OK);
    assert_int_equal(count_entries(), 1); /* the temporary */
    latup_atomic_abort(&af);
    assert_int_equal(count_entries(), 0);
    assert_int_equal(access(p, F_OK), -1);
    latup_atomic_abort(&af); /* twice is harmless */
    latup_atomic_abort(NULL);

    /* two writers of one target get distinct temporaries */
    latup_atomic_file a2;
    assert_int_equal(latup_atomic_open(&af, p), LATUP_OK);
    assert_int_equal(latup_atomic_open(&a2, p), LATUP_OK);
    assert_string_not_equal(af.tmp_path, a2.tmp_path);
    assert_int_equal(count_entries(), 2);
    latup_atomic_abort(&af);
    latup_atomic_abort(&a2);
    assert_int_equal(count_entries(), 0);

    /* an abort leaves an existing target untouched */
    write_bytes(p, "keep", 4);
    assert_int_equal(latup_atomic_open(&af, p), LATUP_OK);
    assert_int_equal(latup_atomic_write(&af, "overwrite", 9), LATUP_OK);
    latup_atomic_abort(&af);
    read_expect(p, 64, (const uint8_t *)"keep", 4);
    assert_int_equal(count_entries(), 1);
}

static void test_atomic_errors(void **state) {
    (void)state;
    latup_atomic_file af;
    /* a directory that does not exist */
    assert_int_equal(latup_atomic_open(&af, "/nonexistent-dir-latup/out.bin"), LATUP_E_IO);
    assert_non_null(strstr(latup_last_error(), "/nonexistent-dir-latup/out.bin: "));
    assert_non_null(strstr(latup_last_error(), "No such file or directory"));
    assert_null(af.f);
    assert_null(af.tmp_path);
    /* a "directory" that is a regular file */
    write_bytes(tmp_path("file"), "x", 1);
    char p[300];
    snprintf(p, sizeof p, "%s/sub.bin", tmp_path("file"));
    assert_int_equal(latup_atomic_open(&af, p), LATUP_E_IO);
    assert_non_null(strstr(latup_last_error(), "Not a directory"));
    /* the rename fails when the target is a directory: the temporary is removed */
    const char *d = tmp_path("adir");
    assert_int_equal(mkdir(d, 0755), 0);
    assert_int_equal(latup_atomic_open(&af, d), LATUP_OK);
    assert_int_equal(latup_atomic_write(&af, "x", 1), LATUP_OK);
    assert_int_equal(latup_atomic_commit(&af), LATUP_E_IO);
    assert_non_null(strstr(latup_last_error(), "adir: cannot rename"));
    assert_int_equal(count_entries(), 2); /* "file" and "adir", no temporary */
    latup_atomic_abort(&af);
    /* a read-only directory (root ignores permissions) */
    if (geteuid() != 0) {
        const char *ro = tmp_path("ro");
        assert_int_equal(mkdir(ro, 0555), 0);
        snprintf(p, sizeof p, "%s/x.bin", ro);
        assert_int_equal(latup_atomic_open(&af, p), LATUP_E_IO);
        assert_non_null(strstr(latup_last_error(), "Permission denied"));
        chmod(ro, 0755);
    }
}

/* A 250- and a 255-byte destination name (NAME_MAX on Linux file systems): the temporary's name
 * is short, so both are written; an empty path is a usage error. */
static void test_atomic_long_names(void **state) {
    (void)state;
    for (int len = 250; len <= 255; len += 5) {
        char name[256], p[600];
        memset(name, 'n', (size_t)len);
        memcpy(name + len - 4, ".npy", 4);
        name[len] = '\0';
        snprintf(p, sizeof p, "%s/%s", g_dir, name);
        latup_atomic_file af;
        latup_status st = latup_atomic_open(&af, p);
        printf("  a %d-byte file name: %s\n", len, st ? latup_last_error() : "written");
        assert_int_equal(st, LATUP_OK);
        assert_int_equal(latup_atomic_write(&af, "long", 4), LATUP_OK);
        assert_int_equal(latup_atomic_commit(&af), LATUP_OK);
        read_expect(p, 64, (const uint8_t *)"long", 4);
    }
    assert_int_equal(count_entries(), 2);
    latup_atomic_file af;
    assert_int_equal(latup_atomic_open(&af, ""), LATUP_E_USAGE);
    printf("  an empty path: %s\n", latup_last_error());
    assert_null(af.f);
    assert_int_equal(count_entries(), 2);
}

/* ---- the temporaries a signal handler removes ------------------------------------------------- */

static void test_remove_temporaries(void **state) {
    (void)state;
    /* a committed file stays; three live temporaries go */
    latup_atomic_file done, live[3];
    assert_int_equal(latup_atomic_open(&done, tmp_path("done.bin")), LATUP_OK);
    assert_int_equal(latup_atomic_write(&done, "done", 4), LATUP_OK);
    assert_int_equal(latup_atomic_commit(&done), LATUP_OK);
    for (int k = 0; k < 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "live%d.bin", k);
        assert_int_equal(latup_atomic_open(&live[k], tmp_path(name)), LATUP_OK);
        assert_int_equal(latup_atomic_write(&live[k], "partial", 7), LATUP_OK);
    }
    assert_int_equal(count_entries(), 4);
    errno = EDOM;
    latup_remove_temporaries();
    printf("  3 live temporaries and a committed file: %d entr%s left after latup_remove_temporaries\n",
           count_entries(), count_entries() == 1 ? "y" : "ies");
    assert_int_equal(errno, EDOM); /* a handler's errno is kept */
    assert_int_equal(count_entries(), 1);
    read_expect(tmp_path("done.bin"), 64, (const uint8_t *)"done", 4);
    /* their writers then fail at the commit, and put nothing in place */
    for (int k = 0; k < 3; k++) assert_int_equal(latup_atomic_commit(&live[k]), LATUP_E_IO);
    printf("  a writer whose temporary was removed: %s\n", latup_last_error());
    assert_int_equal(count_entries(), 1);
    /* a temporary aborted or committed is forgotten: a file of its name made later stays */
    latup_atomic_file gone;
    assert_int_equal(latup_atomic_open(&gone, tmp_path("gone.bin")), LATUP_OK);
    char tmp_name[600];
    snprintf(tmp_name, sizeof tmp_name, "%s", gone.tmp_path);
    latup_atomic_abort(&gone);
    write_bytes(tmp_name, "someone else's", 14);
    latup_remove_temporaries();
    assert_int_equal(access(tmp_name, F_OK), 0);
    assert_int_equal(count_entries(), 2);
    /* many at once, more than one block of the list */
    enum { MANY = 600 };
    latup_atomic_file *m = calloc(MANY, sizeof *m);
    assert_non_null(m);
    for (int k = 0; k < MANY; k++) {
        char name[32];
        snprintf(name, sizeof name, "m%d.bin", k);
        assert_int_equal(latup_atomic_open(&m[k], tmp_path(name)), LATUP_OK);
    }
    assert_int_equal(count_entries(), 2 + MANY);
    latup_remove_temporaries();
    printf("  %d live temporaries: %d entries left after latup_remove_temporaries\n", MANY, count_entries());
    assert_int_equal(count_entries(), 2);
    for (int k = 0; k < MANY; k++) latup_atomic_abort(&m[k]);
    free(m);
}

/* ---- output sets -------------------------------------------------------------------------------- */

static latup_tensor small_tensor(float fill) {
    latup_tensor t;
    const int64_t shape[3] = {3, 2, 2};
    assert_int_equal(latup_tensor_alloc(&t, 3, shape), LATUP_OK);
    for (int i = 0; i < 12; i++) t.data[i] = fill + 0.01f * (float)i;
    return t;
}

static uint8_t *slurp(const char *path, size_t *n) {
    uint8_t *b;
    assert_int_equal(latup_read_file(path, 1 << 20, &b, n), LATUP_OK);
    return b;
}

/* One report line per check: what was called, the status and the message. */
static void expect_status(const char *what, latup_status st, latup_status want, const char *says) {
    const int ok = st == want && (!says || strstr(latup_last_error(), says));
    printf("  %-48s %s %s: %s\n", what, ok ? "OK" : "NOT OK", latup_status_name(st), st ? latup_last_error() : "");
    assert_int_equal(st, want);
    if (says) assert_non_null(strstr(latup_last_error(), says));
}

/* The file holds exactly `want` (n bytes). */
static void expect_same(const char *path, const uint8_t *want, size_t n) {
    size_t m;
    uint8_t *b = slurp(path, &m);
    assert_int_equal(m, n);
    assert_memory_equal(b, want, n);
    free(b);
}

static void test_outputs_states(void **state) {
    (void)state;
    latup_tensor t = small_tensor(0.25f), u = small_tensor(0.75f);
    const char *a = tmp_path("a.npy"), *b = tmp_path("b.npy"), *c = tmp_path("c.png");
    latup_outputs *o;
    assert_int_equal(latup_outputs_new(&o), LATUP_OK);
    assert_int_equal(latup_outputs_add_npy(o, a, &t), LATUP_OK);
    assert_int_equal(latup_outputs_commit(o), LATUP_OK);
    size_t an;
    uint8_t *abytes = slurp(a, &an);
    /* committed: every further call is a usage error naming the state, and touches nothing */
    expect_status("add_npy after the commit", latup_outputs_add_npy(o, b, &u), LATUP_E_USAGE, "already committed");
    expect_status("add_npy onto the committed file", latup_outputs_add_npy(o, a, &u), LATUP_E_USAGE,
                  "already committed");
    expect_status("add_png after the commit", latup_outputs_add_png(o, c, &u, LATUP_PIXELS_UNIT, 8), LATUP_E_USAGE,
                  "already committed");
    expect_status("a second commit", latup_outputs_commit(o), LATUP_E_USAGE, "latup_outputs_commit: the output set "
                                                                              "is already committed");
    expect_status("a third commit", latup_outputs_commit(o), LATUP_E_USAGE, "already committed");
    expect_same(a, abytes, an);
    assert_int_equal(access(b, F_OK), -1);
    assert_int_equal(access(c, F_OK), -1);
    assert_int_equal(count_entries(), 1); /* a.npy, no temporary */
    latup_outputs_free(o);                /* free after the commit keeps the files */
    expect_same(a, abytes, an);
    latup_outputs_free(NULL);

    /* aborted: the commit fails at the second rename (its destination became a non-empty
     * directory) and takes the first back; later adds and commits are usage errors and touch
     * nothing, not even a file made since at a name the set held */
    const char *blocked = tmp_path("blocked.npy"), *d = tmp_path("d.npy");
    assert_int_equal(latup_outputs_new(&o), LATUP_OK);
    assert_int_equal(latup_outputs_add_npy(o, d, &t), LATUP_OK);
    assert_int_equal(latup_outputs_add_npy(o, blocked, &t), LATUP_OK);
    assert_int_equal(mkdir(blocked, 0755), 0);
    write_bytes(tmp_path("blocked.npy/x"), "x", 1);
    expect_status("a commit whose second rename fails", latup_outputs_commit(o), LATUP_E_IO, "blocked.npy");
    assert_int_equal(access(d, F_OK), -1);
    assert_int_equal(count_entries(), 2); /* a.npy and the blocking directory */
    write_bytes(d, "made after", 10);
    expect_status("commit after a failed commit", latup_outputs_commit(o), LATUP_E_USAGE, "aborted");
    expect_status("add_npy after a failed commit", latup_outputs_add_npy(o, b, &u), LATUP_E_USAGE, "aborted");
    expect_status("add_png after a failed commit", latup_outputs_add_png(o, c, &u, LATUP_PIXELS_SIGNED, 16),
                  LATUP_E_USAGE, "its commit failed");
    expect_same(d, (const uint8_t *)"made after", 10);
    expect_same(a, abytes, an);
    assert_int_equal(count_entries(), 3);
    latup_outputs_free(o);
    expect_same(d, (const uint8_t *)"made after", 10);

    /* a failed add leaves the set open: the outputs added before it, and after, are committed */
    assert_int_equal(latup_outputs_new(&o), LATUP_OK);
    assert_int_equal(latup_outputs_add_npy(o, b, &u), LATUP_OK);
    latup_tensor bad = small_tensor(0.5f);
    bad.data[3] = NAN;
    expect_status("add_png of an image holding NaN", latup_outputs_add_png(o, c, &bad, LATUP_PIXELS_UNIT, 8),
                  LATUP_E_INPUT, "NaN");
    latup_tensor_free(&bad);
    assert_int_equal(latup_outputs_add_npy(o, tmp_path("e.npy"), &t), LATUP_OK);
    expect_status("commit after a failed add", latup_outputs_commit(o), LATUP_OK, NULL);
    assert_int_equal(access(b, F_OK), 0);
    assert_int_equal(access(tmp_path("e.npy"), F_OK), 0);
    assert_int_equal(access(c, F_OK), -1);
    latup_outputs_free(o);
    assert_int_equal(count_entries(), 5);
    free(abytes);
    latup_tensor_free(&t);
    latup_tensor_free(&u);
}

/* The argument contract on the file API: NULLs, empty paths, a tensor without data, enums and
 * bit depths out of range are usage errors naming the function and argument; nothing is written. */
static void test_outputs_args(void **state) {
    (void)state;
    latup_tensor t = small_tensor(0.5f), img;
    const int64_t rgb[3] = {3, 2, 2};
    assert_int_equal(latup_tensor_alloc(&img, 3, rgb), LATUP_OK);
    const char *p = tmp_path("p.npy"), *q = tmp_path("q.png");
    expect_status("latup_output_check(\"\")", latup_output_check(""), LATUP_E_USAGE, "empty");
    expect_status("latup_output_check(NULL)", latup_output_check(NULL), LATUP_E_USAGE, "'path' is NULL");
    expect_status("latup_outputs_new(NULL)", latup_outputs_new(NULL), LATUP_E_USAGE, "'o' is NULL");
    expect_status("latup_outputs_commit(NULL)", latup_outputs_commit(NULL), LATUP_E_USAGE, "'o' is NULL");
    latup_outputs *o;
    assert_int_equal(latup_outputs_new(&o), LATUP_OK);
    expect_status("add_npy(NULL set)", latup_outputs_add_npy(NULL, p, &t), LATUP_E_USAGE,
                  "latup_outputs_add_npy: argument 'o' is NULL");
    expect_status("add_npy(NULL path)", latup_outputs_add_npy(o, NULL, &t), LATUP_E_USAGE, "'path' is NULL");
    expect_status("add_npy(\"\")", latup_outputs_add_npy(o, "", &t), LATUP_E_USAGE, "empty");
    expect_status("add_npy(NULL tensor)", latup_outputs_add_npy(o, p, NULL), LATUP_E_USAGE, "'t' is NULL");
    expect_status("add_png(NULL image)", latup_outputs_add_png(o, q, NULL, LATUP_PIXELS_UNIT, 8), LATUP_E_USAGE,
                  "'img' is NULL");
    latup_tensor nodata = t;
    nodata.data = NULL;
    expect_status("add_npy of a tensor with a shape, no data", latup_outputs_add_npy(o, p, &nodata), LATUP_E_USAGE,
                  "data is NULL");
    latup_tensor noimg = img;
    noimg.data = NULL;
    expect_status("add_png of an image with no data", latup_outputs_add_png(o, q, &noimg, LATUP_PIXELS_UNIT, 8),
                  LATUP_E_USAGE, "data is NULL");
    latup_tensor rank0 = t;
    rank0.ndim = 0;
    expect_status("add_npy of a rank-0 tensor", latup_outputs_add_npy(o, p, &rank0), LATUP_E_USAGE, "rank 0");
    expect_status("add_png, range 2", latup_outputs_add_png(o, q, &img, (latup_pixel_range)2, 8), LATUP_E_USAGE,
                  "range 2");
    expect_status("add_png, range -1", latup_outputs_add_png(o, q, &img, (latup_pixel_range)-1, 8), LATUP_E_USAGE,
                  "range -1");
    expect_status("add_png, 12 bits", latup_outputs_add_png(o, q, &img, LATUP_PIXELS_UNIT, 12), LATUP_E_USAGE,
                  "bits 12");
    expect_status("add_png, 0 bits", latup_outputs_add_png(o, q, &img, LATUP_PIXELS_SIGNED, 0), LATUP_E_USAGE,
                  "bits 0");
    assert_int_equal(count_entries(), 0); /* nothing written, no temporary */
    /* the set is still open and works */
    assert_int_equal(latup_outputs_add_npy(o, p, &t), LATUP_OK);
    assert_int_equal(latup_outputs_add_png(o, q, &img, LATUP_PIXELS_UNIT, 16), LATUP_OK);
    expect_status("commit after refused adds", latup_outputs_commit(o), LATUP_OK, NULL);
    latup_outputs_free(o);
    assert_int_equal(count_entries(), 2);

    /* readers: path and t required, key and kind may be NULL */
    latup_tensor r;
    latup_file_kind kind = LATUP_FILE_PNG;
    expect_status("latup_tensor_read(NULL path)", latup_tensor_read(NULL, NULL, &r, &kind), LATUP_E_USAGE,
                  "'path' is NULL");
    assert_int_equal(kind, 0);
    expect_status("latup_tensor_read(NULL t)", latup_tensor_read(p, NULL, NULL, NULL), LATUP_E_USAGE, "'t' is NULL");
    expect_status("latup_tensor_read(key NULL, kind NULL)", latup_tensor_read(p, NULL, &r, NULL), LATUP_OK, NULL);
    assert_int_equal(r.ndim, 3);
    latup_tensor_free(&r);
    latup_checkpoint_info ci;
    expect_status("latup_checkpoint_info_read(NULL path)", latup_checkpoint_info_read(NULL, &ci), LATUP_E_USAGE,
                  "'path' is NULL");
    expect_status("latup_checkpoint_info_read(NULL ci)", latup_checkpoint_info_read(p, NULL), LATUP_E_USAGE,
                  "'ci' is NULL");

    /* latup_set_error: a NULL format or a status outside the enum */
    const char *volatile no_fmt = NULL; /* not a literal: the format attribute would object */
    expect_status("latup_set_error(E_INPUT, NULL)", latup_set_error(LATUP_E_INPUT, no_fmt), LATUP_E_USAGE,
                  "'fmt' is NULL");
    expect_status("latup_set_error(99, ...)", latup_set_error((latup_status)99, "x"), LATUP_E_USAGE, "status 99");
    expect_status("latup_set_error(-1, ...)", latup_set_error((latup_status)-1, "x"), LATUP_E_USAGE, "status -1");
    expect_status("latup_set_error(E_IO, \"x %d\", 3)", latup_set_error(LATUP_E_IO, "x %d", 3), LATUP_E_IO, "x 3");
    expect_status("latup_set_error(OK, ...)", latup_set_error(LATUP_OK, "fine"), LATUP_OK, NULL);
    latup_tensor_free(&t);
    latup_tensor_free(&img);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_read_plain, each_setup),
        cmocka_unit_test_setup(test_refused_from_size, each_setup),
        cmocka_unit_test_setup(test_read_gzip, each_setup),
        cmocka_unit_test_setup(test_gzip_bomb, each_setup),
        cmocka_unit_test_setup(test_gzip_corrupt, each_setup),
        cmocka_unit_test_setup(test_read_os_errors, each_setup),
        cmocka_unit_test_setup(test_gzip_max_across_chunk, each_setup),
        cmocka_unit_test_setup(test_stdin, each_setup),
        cmocka_unit_test_setup(test_fifo_and_streams, each_setup),
        cmocka_unit_test_setup(test_atomic_commit, each_setup),
        cmocka_unit_test_setup(test_atomic_abort, each_setup),
        cmocka_unit_test_setup(test_atomic_errors, each_setup),
        cmocka_unit_test_setup(test_atomic_long_names, each_setup),
        cmocka_unit_test_setup(test_remove_temporaries, each_setup),
        cmocka_unit_test_setup(test_outputs_states, each_setup),
        cmocka_unit_test_setup(test_outputs_args, each_setup),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
