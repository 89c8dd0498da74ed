/* fuzz_safetensors.c — libFuzzer target for latup_safetensors_parse (and the JSON parser under
 * it): LATUP_OK with a table whose every tensor can be read and looked up, or a clean error.
 * Seeds: corpus/fuzz_safetensors/. */
#include "io/weights.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    latup_weights w;
    latup_status st = latup_safetensors_parse(data, size, "fuzz.safetensors", &w);
    if (st == LATUP_OK) {
        uint64_t acc = 0;
        for (int i = 0; i < w.n; i++) {
            const latup_wtensor *t = &w.t[i];
            if (!t->name || latup_weights_find(&w, t->name) != t) abort(); /* names are unique */
            for (int64_t k = 0; k < t->numel; k++) { /* every element is inside the blob (ASan) */
                if (t->i64) {
                    acc ^= (uint64_t)t->i64[k];
                } else if (t->f32) {
                    uint32_t u;
                    memcpy(&u, &t->f32[k], 4);
                    acc ^= u;
                } else {
                    abort();
                }
            }
        }
        for (int i = 0; i < w.n_meta; i++)
            if (latup_weights_meta(&w, w.meta_key[i]) == NULL) abort();
        volatile uint64_t sink = acc;
        (void)sink;
        latup_weights_free(&w);
    } else if (st != LATUP_E_INPUT && st != LATUP_E_NOMEM) {
        abort();
    }
    return 0;
}
