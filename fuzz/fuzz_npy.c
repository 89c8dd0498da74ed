/* fuzz_npy.c — libFuzzer target for latup_npy_parse: LATUP_OK with a tensor whose every element
 * is readable, or a clean error. Seeds: corpus/fuzz_npy/. */
#include "io/npy.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    latup_tensor t;
    latup_status st = latup_npy_parse(data, size, "fuzz.npy", &t);
    if (st == LATUP_OK) {
        if (t.ndim < 1 || t.ndim > LATUP_MAX_DIMS || !t.data) abort();
        int64_t n = latup_tensor_numel(&t);
        uint32_t acc = 0;
        for (int64_t i = 0; i < n; i++) { /* every element is inside the allocation (ASan) */
            uint32_t u;
            memcpy(&u, &t.data[i], 4);
            acc ^= u;
        }
        volatile uint32_t sink = acc;
        (void)sink;
        latup_tensor_free(&t);
    } else if (st != LATUP_E_INPUT && st != LATUP_E_NOMEM) {
        abort();
    } else if (t.data || t.ndim) {
        abort();
    }
    return 0;
}
