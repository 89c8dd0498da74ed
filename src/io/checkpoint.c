/* checkpoint.c — one entry point for every checkpoint format, chosen by the file's first bytes
 * (never by its extension): safetensors, PyTorch .pth (zip), either one gzip-compressed. The file
 * is opened once (io/fileio.h: sniffed, gunzipped, mapped or read) and handed to its reader
 * (safetensors.c, pth.c), which fills the table (io/weights.h); tensor data is fetched later. */
#include "io/checkpoint.h"

#include "io/weights.h"

#include <stdlib.h>
#include <string.h>

latup_status latup_weights_parse(const uint8_t *buf, size_t len, const char *path, latup_weights *w) {
    memset(w, 0, sizeof *w);
    if (len >= 4 && buf[0] == 'P' && buf[1] == 'K' && buf[2] == 3 && buf[3] == 4)
        return latup_pth_parse(buf, len, path, w);
    if (len >= 2 && buf[0] == 0x80 && buf[1] <= 5) /* a bare pickle: torch.save before 1.6 */
        return latup_pth_parse(buf, len, path, w);  /* names the legacy format */
    /* safetensors: u64 header length, then the JSON header's '{' */
    if (len >= 9 && buf[8] == '{') return latup_safetensors_parse(buf, len, path, w);
    if (len < 9)
        return latup_fail(LATUP_E_INPUT, "%s: %zu bytes is too short for a checkpoint (safetensors or .pth)", path, len);
    return latup_fail(LATUP_E_INPUT,
                      "%s: not a checkpoint: expected safetensors (8-byte length, then '{') or a PyTorch zip "
                      "('PK'), found bytes %02x %02x %02x %02x ... %02x",
                      path, buf[0], buf[1], buf[2], buf[3], buf[8]);
}

static latup_status open_table(const char *path, const latup_file_format *const *formats, int n, latup_weights *w) {
    memset(w, 0, sizeof *w);
    latup_input *in = latup_calloc(1, sizeof *in, "an input file");
    if (!in) return LATUP_E_NOMEM;
    latup_status st = latup_input_open(in, path, formats, n, "a checkpoint", LATUP_INPUT_MAP);
    if (st) {
        free(in);
        return st;
    }
    st = in->format == &latup_pth_format ? latup_pth_table(in->data, in->len, in->name, w)
                                         : latup_safetensors_table(in->data, in->len, in->name, w);
    if (st) {
        latup_input_close(in);
        free(in);
        return st;
    }
    w->src = in;
    return LATUP_OK;
}

latup_status latup_weights_load(const char *path, latup_weights *w) {
    const latup_file_format *const fmts[] = {&latup_safetensors_format, &latup_pth_format};
    return open_table(path, fmts, 2, w);
}

latup_status latup_safetensors_load(const char *path, latup_weights *w) {
    const latup_file_format *const fmts[] = {&latup_safetensors_format};
    latup_status st = open_table(path, fmts, 1, w);
    if (!st) st = latup_weights_fetch_all(w);
    if (st) latup_weights_free(w);
    return st;
}

