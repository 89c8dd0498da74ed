/* test_fileio.c — whole-file reads (plain, gzip, concatenated gzip, corrupt/truncated gzip, the
 * size cap against a gzip bomb, OS errors) and the atomic writer (commit, abort, replacement,
 * failures leave nothing behind). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "io/fileio.h"

#include <dirent.h>
#include <fcntl.h>
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
    /* the temporary lives next to the target, the target does not exist yet */
    assert_int_equal(strncmp(af.tmp_path, p, strlen(p)), 0);
    assert_non_null(strstr(af.tmp_path, ".tmp."));
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_read_plain, each_setup),
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
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
