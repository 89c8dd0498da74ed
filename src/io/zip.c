/* zip.c — read-only zip reader for PyTorch checkpoints: end-of-central-directory search, ZIP64
 * records (torch's miniz writer always emits them), central directory checked entry by entry
 * against its local header, stored and deflated extraction with CRC-32. The archive is hostile
 * input: every offset and size is bounds- and overflow-checked before use. */
#include "io/zip.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SIG_EOCD 0x06054b50u     /* end of central directory */
#define SIG_Z64_LOC 0x07064b50u  /* ZIP64 end-of-central-directory locator */
#define SIG_Z64_EOCD 0x06064b50u /* ZIP64 end-of-central-directory record */
#define SIG_CENTRAL 0x02014b50u
#define SIG_LOCAL 0x04034b50u

#define EOCD_LEN 22u
#define Z64_LOC_LEN 20u
#define Z64_EOCD_LEN 56u
#define CENTRAL_LEN 46u
#define LOCAL_LEN 30u
#define MAX_COMMENT 65535u

/* A checkpoint has a few hundred entries; this only bounds the table a crafted directory can make
 * us allocate (the directory must also be large enough to hold that many headers). */
#define ZIP_MAX_ENTRIES ((uint64_t)1 << 20)

/* Deflate cannot expand data by more than ~1032:1 (258-byte matches in ~2 bits); a larger
 * declared ratio is a lie, refused before the output buffer is allocated. */
#define DEFLATE_MAX_RATIO 1032u

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

/* Names go into messages with their exact length (the formatter escapes and caps them). */
#define NAME_FMT "'%.*s'"
#define NAME_ARG(e) (int)(e)->name_len, (e)->name

/* The EOCD is the last record; a comment of up to 64 KiB may follow it. Searching backwards for a
 * signature whose comment length reaches exactly the end of the file avoids matching the
 * signature bytes inside a comment. */
static latup_status find_eocd(const uint8_t *b, size_t len, const char *path, size_t *pos) {
    if (len < EOCD_LEN)
        return latup_fail(
            LATUP_E_INPUT,
            "%s: not a zip archive (%zu bytes, too short for an end-of-central-directory record)", path, len);
    size_t last = len - EOCD_LEN;
    size_t stop = last > MAX_COMMENT ? last - MAX_COMMENT : 0;
    for (size_t p = last + 1; p-- > stop;)
        if (rd32(b + p) == SIG_EOCD && rd16(b + p + 20) == len - p - EOCD_LEN) {
            *pos = p;
            return LATUP_OK;
        }
    return latup_fail(LATUP_E_INPUT, "%s: not a zip archive (no end-of-central-directory record)", path);
}

/* Where the central directory is and how many entries it has, from the EOCD or, when the locator
 * is present, the ZIP64 record. *cd_limit is where the directory must end by (the next record). */
typedef struct {
    uint64_t n_entries, cd_offset, cd_size, cd_limit;
} zip_dir;

static latup_status read_directory_location(const uint8_t *b, size_t len, size_t eocd, const char *path,
                                            zip_dir *d) {
    const uint8_t *e = b + eocd;
    uint64_t disk = rd16(e + 4), cd_disk = rd16(e + 6), n_disk = rd16(e + 8);
    d->n_entries = rd16(e + 10);
    d->cd_size = rd32(e + 12);
    d->cd_offset = rd32(e + 16);
    d->cd_limit = eocd;
    bool saturated = n_disk == 0xFFFF || d->n_entries == 0xFFFF || d->cd_size == 0xFFFFFFFFu ||
                     d->cd_offset == 0xFFFFFFFFu;

    if (eocd >= Z64_LOC_LEN && rd32(b + eocd - Z64_LOC_LEN) == SIG_Z64_LOC) {
        const uint8_t *loc = b + eocd - Z64_LOC_LEN;
        uint64_t rec_disk = rd32(loc + 4), rec = rd64(loc + 8), n_disks = rd32(loc + 16);
        uint64_t loc_pos = eocd - Z64_LOC_LEN;
        if (rec_disk != 0 || n_disks > 1)
            return latup_fail(LATUP_E_INPUT, "%s: multi-disk (spanned) zip archives are not supported", path);
        if (rec > loc_pos || loc_pos - rec < Z64_EOCD_LEN)
            return latup_fail(LATUP_E_INPUT,
                              "%s: ZIP64 end-of-central-directory offset %llu lies outside the archive", path,
                              (unsigned long long)rec);
        const uint8_t *r = b + rec;
        if (rd32(r) != SIG_Z64_EOCD)
            return latup_fail(LATUP_E_INPUT,
                              "%s: bad ZIP64 end-of-central-directory signature at offset %llu", path,
                              (unsigned long long)rec);
        uint64_t rec_size = rd64(r + 4); /* bytes after this field: 44 plus extensible data */
        if (rec_size < Z64_EOCD_LEN - 12 || rec_size > loc_pos - rec - 12)
            return latup_fail(LATUP_E_INPUT, "%s: ZIP64 end-of-central-directory record size %llu is invalid",
                              path, (unsigned long long)rec_size);
        disk = rd32(r + 16);
        cd_disk = rd32(r + 20);
        n_disk = rd64(r + 24);
        d->n_entries = rd64(r + 32);
        d->cd_size = rd64(r + 40);
        d->cd_offset = rd64(r + 48);
        d->cd_limit = rec;
    } else if (saturated) {
        return latup_fail(LATUP_E_INPUT,
                          "%s: end-of-central-directory needs ZIP64 values but there is no ZIP64 locator",
                          path);
    }

    if (disk != 0 || cd_disk != 0 || n_disk != d->n_entries)
        return latup_fail(LATUP_E_INPUT, "%s: multi-disk (spanned) zip archives are not supported", path);
    if (d->cd_offset > d->cd_limit || d->cd_size > d->cd_limit - d->cd_offset)
        return latup_fail(
            LATUP_E_INPUT,
            "%s: central directory (offset %llu, %llu bytes) lies outside the archive (%zu bytes)", path,
            (unsigned long long)d->cd_offset, (unsigned long long)d->cd_size, len);
    if (d->n_entries > d->cd_size / CENTRAL_LEN)
        return latup_fail(LATUP_E_INPUT,
                          "%s: central directory claims %llu entries but its %llu bytes hold at most %llu",
                          path, (unsigned long long)d->n_entries, (unsigned long long)d->cd_size,
                          (unsigned long long)(d->cd_size / CENTRAL_LEN));
    if (d->n_entries > ZIP_MAX_ENTRIES)
        return latup_fail(LATUP_E_INPUT,
                          "%s: %llu zip entries exceed the limit of %llu, the cap on the directory table (a "
                          "checkpoint has a few hundred)",
                          path, (unsigned long long)d->n_entries, (unsigned long long)ZIP_MAX_ENTRIES);
    return LATUP_OK;
}

/* The ZIP64 extended-information extra field (id 1) holds, in this order, each of the 64-bit
 * values whose 32-bit field is saturated. */
static latup_status apply_zip64_extra(const uint8_t *x, size_t xlen, const char *path, size_t idx,
                                      latup_zip_entry *e, uint64_t *local_offset, uint32_t *disk) {
    bool need_u = e->usize == 0xFFFFFFFFu, need_c = e->csize == 0xFFFFFFFFu;
    bool need_o = *local_offset == 0xFFFFFFFFu, need_d = *disk == 0xFFFFu;
    size_t q = 0;
    while (q + 4 <= xlen) {
        uint16_t id = rd16(x + q), sz = rd16(x + q + 2);
        if (sz > xlen - q - 4)
            return latup_fail(LATUP_E_INPUT,
                              "%s: zip entry %zu " NAME_FMT ": extra field overruns its header", path, idx,
                              NAME_ARG(e));
        if (id == 1) {
            const uint8_t *f = x + q + 4;
            size_t need = 8u * (need_u + need_c + need_o) + 4u * need_d;
            if (sz < need)
                return latup_fail(LATUP_E_INPUT,
                                  "%s: zip entry %zu " NAME_FMT ": ZIP64 extra field is %u bytes, needs %zu",
                                  path, idx, NAME_ARG(e), sz, need);
            if (need_u) e->usize = rd64(f), f += 8;
            if (need_c) e->csize = rd64(f), f += 8;
            if (need_o) *local_offset = rd64(f), f += 8;
            if (need_d) *disk = rd32(f);
            return LATUP_OK;
        }
        q += 4u + sz;
    }
    if (need_u || need_c || need_o || need_d)
        return latup_fail(LATUP_E_INPUT,
                          "%s: zip entry %zu " NAME_FMT ": ZIP64 sizes without a ZIP64 extra field", path,
                          idx, NAME_ARG(e));
    return LATUP_OK;
}

/* One central-directory header at *p (advanced past it), checked against its local header. */
static latup_status read_entry(const latup_zip *z, size_t idx, uint64_t *p, uint64_t cd_end,
                               latup_zip_entry *e) {
    const uint8_t *b = z->buf;
    const char *path = z->path;
    if (cd_end - *p < CENTRAL_LEN)
        return latup_fail(LATUP_E_INPUT, "%s: central directory ends inside the header of entry %zu", path,
                          idx);
    const uint8_t *c = b + *p;
    if (rd32(c) != SIG_CENTRAL)
        return latup_fail(LATUP_E_INPUT, "%s: bad central directory signature for entry %zu at offset %llu",
                          path, idx, (unsigned long long)*p);
    uint16_t flags = rd16(c + 8);
    e->method = rd16(c + 10);
    e->crc = rd32(c + 16);
    e->csize = rd32(c + 20);
    e->usize = rd32(c + 24);
    size_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
    uint32_t disk = rd16(c + 34);
    uint64_t local = rd32(c + 42);
    if (cd_end - *p - CENTRAL_LEN < (uint64_t)nlen + xlen + clen)
        return latup_fail(LATUP_E_INPUT, "%s: central directory ends inside the name of entry %zu", path,
                          idx);
    e->name = (const char *)c + CENTRAL_LEN;
    e->name_len = nlen;
    *p += CENTRAL_LEN + nlen + xlen + clen;

    latup_status st = apply_zip64_extra(c + CENTRAL_LEN + nlen, xlen, path, idx, e, &local, &disk);
    if (st) return st;
    if (disk != 0)
        return latup_fail(LATUP_E_INPUT,
                          "%s: zip entry " NAME_FMT
                          " starts on disk %u: multi-disk archives are not supported",
                          path, NAME_ARG(e), disk);
    if ((flags & 0x41u) || e->method == 99)
        return latup_fail(LATUP_E_INPUT, "%s: zip entry " NAME_FMT " is encrypted", path, NAME_ARG(e));
    if (e->method != 0 && e->method != 8)
        return latup_fail(LATUP_E_INPUT,
                          "%s: zip entry " NAME_FMT
                          " uses compression method %u (only stored (0) and deflate (8) are supported)",
                          path, NAME_ARG(e), e->method);
    if (e->method == 0 && e->csize != e->usize)
        return latup_fail(LATUP_E_INPUT,
                          "%s: zip entry " NAME_FMT " is stored but its sizes differ (%llu vs %llu)", path,
                          NAME_ARG(e), (unsigned long long)e->csize, (unsigned long long)e->usize);

    /* The local header repeats the name and method; its extra field may differ (torch pads it to
     * align the data), so only its length is taken from it. Sizes in a local header may be zero
     * (data descriptor), the central directory's are the ones used. */
    if (local > z->len || z->len - local < LOCAL_LEN)
        return latup_fail(LATUP_E_INPUT,
                          "%s: zip entry " NAME_FMT ": local header offset %llu is past the end (%zu bytes)",
                          path, NAME_ARG(e), (unsigned long long)local, z->len);
    const uint8_t *l = b + local;
    if (rd32(l) != SIG_LOCAL)
        return latup_fail(LATUP_E_INPUT,
                          "%s: zip entry " NAME_FMT ": bad local header signature at offset %llu", path,
                          NAME_ARG(e), (unsigned long long)local);
    size_t lnlen = rd16(l + 26), lxlen = rd16(l + 28);
    if (rd16(l + 8) != e->method)
        return latup_fail(LATUP_E_INPUT,
                          "%s: zip entry " NAME_FMT
                          ": local header method %u differs from the directory's %u",
                          path, NAME_ARG(e), rd16(l + 8), e->method);
    if (z->len - local - LOCAL_LEN < (uint64_t)lnlen + lxlen)
        return latup_fail(LATUP_E_INPUT,
                          "%s: zip entry " NAME_FMT ": local header runs past the end of the archive", path,
                          NAME_ARG(e));
    if (lnlen != nlen || memcmp(l + LOCAL_LEN, e->name, nlen) != 0)
        return latup_fail(LATUP_E_INPUT, "%s: zip entry " NAME_FMT ": local header names a different file",
                          path, NAME_ARG(e));
    e->data_offset = local + LOCAL_LEN + lnlen + lxlen;
    /* What the entry's bytes can hold, checked here, before anyone sizes a buffer by usize. */
    if (e->method == 8 && e->usize / DEFLATE_MAX_RATIO + (e->usize % DEFLATE_MAX_RATIO != 0) > e->csize)
        return latup_fail(LATUP_E_INPUT,
                          "%s: zip entry " NAME_FMT
                          " claims %llu bytes from %llu compressed: more than deflate can produce",
                          path, NAME_ARG(e), (unsigned long long)e->usize, (unsigned long long)e->csize);
    if (e->csize > z->len - e->data_offset)
        return latup_fail(LATUP_E_INPUT,
                          "%s: zip entry " NAME_FMT
                          ": %llu bytes of data at offset %llu run past the end of the archive (%zu bytes)",
                          path, NAME_ARG(e), (unsigned long long)e->csize, (unsigned long long)e->data_offset,
                          z->len);
    return LATUP_OK;
}

static int cmp_entry_name(const latup_zip_entry *a, const char *name, size_t len) {
    size_t n = a->name_len < len ? a->name_len : len;
    int c = memcmp(a->name, name, n);
    if (c) return c;
    return a->name_len < len ? -1 : a->name_len > len ? 1 : 0;
}

static int cmp_entries(const void *x, const void *y) {
    const latup_zip_entry *a = x, *b = y;
    return cmp_entry_name(a, b->name, b->name_len);
}

latup_status latup_zip_open(latup_zip *z, const uint8_t *buf, size_t len, const char *path) {
    memset(z, 0, sizeof *z);
    z->buf = buf;
    z->len = len;
    z->path = path ? path : "<buffer>";
    size_t eocd = 0;
    zip_dir d = {0};
    latup_status st = find_eocd(buf, len, z->path, &eocd);
    if (!st) st = read_directory_location(buf, len, eocd, z->path, &d);
    if (st) return st;

    /* Entries are kept sorted by name (binary search, duplicate check); the central directory
     * order carries no meaning for a checkpoint. */
    z->e = latup_calloc((size_t)d.n_entries, sizeof *z->e, "the zip directory");
    if (!z->e) return LATUP_E_NOMEM;
    uint64_t p = d.cd_offset, cd_end = d.cd_offset + d.cd_size;
    for (size_t i = 0; i < (size_t)d.n_entries; i++) {
        if ((st = read_entry(z, i, &p, cd_end, &z->e[i]))) {
            latup_zip_close(z);
            return st;
        }
    }
    z->n = (size_t)d.n_entries;
    qsort(z->e, z->n, sizeof *z->e, cmp_entries);
    for (size_t i = 1; i < z->n; i++)
        if (cmp_entries(&z->e[i - 1], &z->e[i]) == 0) {
            st = latup_fail(LATUP_E_INPUT, "%s: duplicate zip entry " NAME_FMT, z->path, NAME_ARG(&z->e[i]));
            latup_zip_close(z);
            return st;
        }
    return LATUP_OK;
}

void latup_zip_close(latup_zip *z) {
    if (!z) return;
    free(z->e);
    memset(z, 0, sizeof *z);
}

const latup_zip_entry *latup_zip_find(const latup_zip *z, const char *name) {
    size_t len = strlen(name), lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_entry_name(&z->e[mid], name, len);
        if (c == 0) return &z->e[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* zlib takes uInt lengths; entries may be larger than 4 GiB. */
static uint32_t crc_of(const uint8_t *p, size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)crc;
}

/* Raw deflate of exactly e->usize bytes into out (allocated usize + 1: a stream that would write
 * the extra byte is longer than declared). */
static latup_status inflate_entry(const latup_zip *z, const latup_zip_entry *e, uint8_t *out) {
    const uint8_t *src = z->buf + e->data_offset;
    size_t in_size = (size_t)e->csize, out_size = (size_t)e->usize + 1, in_pos = 0, out_pos = 0;
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -15) != Z_OK)
        return latup_fail(LATUP_E_NOMEM, "%s: zip entry " NAME_FMT ": cannot initialise zlib", z->path,
                          NAME_ARG(e));
    latup_status st = LATUP_OK;
    for (;;) {
        if (s.avail_in == 0 && in_pos < in_size) {
            size_t c = in_size - in_pos > UINT_MAX ? UINT_MAX : in_size - in_pos;
            s.next_in = (Bytef *)(uintptr_t)(src + in_pos); /* zlib's API is not const-correct */
            s.avail_in = (uInt)c;
            in_pos += c;
        }
        if (s.avail_out == 0 && out_pos < out_size) {
            size_t c = out_size - out_pos > UINT_MAX ? UINT_MAX : out_size - out_pos;
            s.next_out = out + out_pos;
            s.avail_out = (uInt)c;
            out_pos += c;
        }
        int rc = inflate(&s, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) break;
        if (rc == Z_OK) continue;
        if (rc == Z_BUF_ERROR && s.avail_out == 0 && out_pos == out_size) {
            st = latup_fail(LATUP_E_INPUT,
                            "%s: zip entry " NAME_FMT " inflates past its declared size of %llu bytes",
                            z->path, NAME_ARG(e), (unsigned long long)e->usize);
        } else if (rc == Z_BUF_ERROR) {
            st = latup_fail(LATUP_E_INPUT, "%s: zip entry " NAME_FMT ": deflate stream is truncated", z->path,
                            NAME_ARG(e));
        } else if (rc == Z_MEM_ERROR) {
            st = latup_fail(LATUP_E_NOMEM, "%s: zip entry " NAME_FMT ": out of memory in zlib", z->path,
                            NAME_ARG(e));
        } else {
            st = latup_fail(LATUP_E_INPUT, "%s: zip entry " NAME_FMT ": corrupt deflate data (%s)", z->path,
                            NAME_ARG(e), s.msg ? s.msg : "error");
        }
        break;
    }
    size_t produced = out_pos - s.avail_out;
    inflateEnd(&s);
    if (!st && produced != e->usize)
        st = latup_fail(LATUP_E_INPUT,
                        "%s: zip entry " NAME_FMT " inflates to %zu bytes, its header says %llu", z->path,
                        NAME_ARG(e), produced, (unsigned long long)e->usize);
    return st;
}

latup_status latup_zip_extract(const latup_zip *z, const latup_zip_entry *e, uint64_t max_bytes,
                               const uint8_t **data, size_t *len, uint8_t **owned) {
    *data = NULL;
    *len = 0;
    *owned = NULL;
    if (e->usize > max_bytes || e->usize >= SIZE_MAX)
        return latup_fail(LATUP_E_INPUT, "%s: zip entry " NAME_FMT " is %llu bytes, over the limit of %llu bytes for it",
                          z->path, NAME_ARG(e), (unsigned long long)e->usize, (unsigned long long)max_bytes);
    const uint8_t *bytes = z->buf + e->data_offset;
    uint8_t *buf = NULL;
    if (e->method == 8) { /* usize is at most DEFLATE_MAX_RATIO x csize (checked at open) */
        buf = latup_malloc((size_t)e->usize + 1, "an inflated zip entry");
        if (!buf) return LATUP_E_NOMEM;
        latup_status st = inflate_entry(z, e, buf);
        if (st) {
            free(buf);
            return st;
        }
        bytes = buf;
    }
    uint32_t crc = crc_of(bytes, (size_t)e->usize);
    if (crc != e->crc) {
        free(buf);
        return latup_fail(LATUP_E_INPUT,
                          "%s: zip entry " NAME_FMT ": CRC-32 mismatch (data %08x, directory %08x)", z->path,
                          NAME_ARG(e), crc, e->crc);
    }
    *data = bytes;
    *len = (size_t)e->usize;
    *owned = buf;
    return LATUP_OK;
}

/* ---- streams ----------------------------------------------------------------------------------- */

void latup_zip_stream_size(const uint8_t *h, size_t n, latup_size *s) {
    for (;;) {
        uint64_t p = s->state; /* the next record */
        if (n < 4 || p > n - 4) {
            s->need = p + 4;
            return;
        }
        const uint8_t *r = h + p;
        uint64_t next;
        switch (rd32(r)) {
        case SIG_LOCAL: {
            if (n - p < LOCAL_LEN) {
                s->need = p + LOCAL_LEN;
                return;
            }
            uint64_t csize = rd32(r + 18), nlen = rd16(r + 26), xlen = rd16(r + 28);
            if (rd16(r + 6) & 8u) break; /* sizes in a data descriptor after the data: cannot walk */
            if (csize == 0xFFFFFFFFu) {  /* ZIP64: both sizes in the local extra field */
                if (n - p < LOCAL_LEN + nlen + xlen) {
                    s->need = p + LOCAL_LEN + nlen + xlen;
                    return;
                }
                const uint8_t *x = r + LOCAL_LEN + nlen;
                int found = 0;
                for (uint64_t q = 0; q + 4 <= xlen && !found; q += 4u + rd16(x + q + 2))
                    if (rd16(x + q) == 1 && rd16(x + q + 2) >= 16 && q + 4 + 16 <= xlen) csize = rd64(x + q + 12), found = 1;
                if (!found) break;
            }
            next = p + LOCAL_LEN + nlen + xlen + csize;
            if (next < p) break;
            s->state = next;
            continue;
        }
        case SIG_CENTRAL:
            if (n - p < CENTRAL_LEN) {
                s->need = p + CENTRAL_LEN;
                return;
            }
            s->state = p + CENTRAL_LEN + rd16(r + 28) + rd16(r + 30) + rd16(r + 32);
            continue;
        case SIG_Z64_EOCD:
            if (n - p < 12) {
                s->need = p + 12;
                return;
            }
            next = p + 12 + rd64(r + 4);
            if (next < p) break;
            s->state = next;
            continue;
        case SIG_Z64_LOC:
            s->state = p + Z64_LOC_LEN;
            continue;
        case SIG_EOCD:
            if (n - p < EOCD_LEN) {
                s->need = p + EOCD_LEN;
                return;
            }
            s->known = 1;
            s->total = p + EOCD_LEN + rd16(r + 20);
            return;
        default: break;
        }
        s->need = UINT64_MAX; /* not a walk we can follow: only the cap bounds it */
        return;
    }
}
