/* weights.c — one entry point for every checkpoint format, chosen by the file's first bytes
 * (never by its extension): safetensors, PyTorch .pth (zip), either one gzip-compressed. */
#include "io/fileio.h"
#include "io/weights.h"

#include <stdlib.h>
#include <string.h>

#define MAX_CHECKPOINT ((size_t)64 << 30) /* refuse files (or gzip) inflating past 64 GiB */

latup_status latup_weights_parse(const uint8_t *buf, size_t len, const char *path, latup_weights *w) {
    memset(w, 0, sizeof *w);
    latup_status st;
    if (len >= 4 && buf[0] == 'P' && buf[1] == 'K' && buf[2] == 3 && buf[3] == 4) {
        st = latup_pth_parse(buf, len, path, w);
        if (st == LATUP_OK) w->format = "pytorch zip";
        return st;
    }
    if (len >= 2 && buf[0] == 0x80 && buf[1] <= 5) /* a bare pickle: torch.save before 1.6 */
        return latup_pth_parse(buf, len, path, w);  /* names the legacy format */
    /* safetensors: u64 header length, then the JSON header's '{' */
    if (len >= 9 && buf[8] == '{') {
        st = latup_safetensors_parse(buf, len, path, w);
        if (st == LATUP_OK) w->format = "safetensors";
        return st;
    }
    if (len < 9)
        return latup_fail(LATUP_E_INPUT, "%s: %zu bytes is too short for a checkpoint (safetensors or .pth)", path, len);
    return latup_fail(LATUP_E_INPUT,
                      "%s: not a checkpoint: expected safetensors (8-byte length, then '{') or a PyTorch zip "
                      "('PK'), found bytes %02x %02x %02x %02x ... %02x",
                      path, buf[0], buf[1], buf[2], buf[3], buf[8]);
}

latup_status latup_weights_load(const char *path, latup_weights *w) {
    memset(w, 0, sizeof *w);
    uint8_t *buf;
    size_t len;
    latup_status st = latup_read_file(path, MAX_CHECKPOINT, &buf, &len); /* inflates gzip */
    if (st != LATUP_OK) return st;
    st = latup_weights_parse(buf, len, path, w);
    free(buf);
    return st;
}
