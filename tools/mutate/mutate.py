#!/usr/bin/env python3
"""mutate.py — mutation testing for latup (issues 9 and 24): plants one plausible bug at a time in a
copy of the tree, builds it, runs the tests of the bug's area, and reports killed/survived per file
and per area. Python 3 standard library only; not part of CI.

    tools/mutate/mutate.py run --fresh [--gen-seed G] [--seed S] [--sample 80]   (make mutate: a new list, a sample)
    tools/mutate/mutate.py run [--sample N --seed S] [--jobs 2] [--ids N001,R002] [--area numerics]
                                                                      (make mutate LIST=1: the committed list)
    tools/mutate/mutate.py generate --seed 9 > tools/mutate/mutants.txt     (how the committed list was made)
    tools/mutate/mutate.py check                                      (every mutant still finds its line)

By default (`make mutate`) each run draws a fresh list from a new generator seed (written to
build/mutate/fresh-G.txt) and runs a sample of it picked by a second seed; both seeds and the command
that repeats the run head the report. tools/mutate/mutants.txt is the fixed, reviewed regression set
(`make mutate LIST=1`). Mutants known to be equivalent are listed in tools/mutate/equivalents.txt
(the list's format, matched by file, operator, line text, original and replacement), so they carry
across seeds. The readers and tiling areas, src/ops/arena.c and the `init` operator run in the
SANITIZE=1 build with ASan filling fresh heap blocks with 0xff (NaN) bytes.

The real worktree is never modified: each worker copies it to /tmp/latup-mutate/w<i> (build/
included, so builds are incremental), mutates the copy, and writes the original back after each
mutant. A mutant that does not compile is "stillborn" and not counted; one marked equivalent in
the list is not run and not counted; one whose line is no longer in the file is "stale".
"""
import argparse
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIST = os.path.join(ROOT, "tools", "mutate", "mutants.txt")
EQUIVALENTS = os.path.join(ROOT, "tools", "mutate", "equivalents.txt")
WORK = os.environ.get("LATUP_MUTATE_WORK", "/tmp/latup-mutate")

# ---- areas: the files (and, for the split files, the functions) each area owns -------------------

# The tiled pass, the tile plan and the call's tile options: in the tiling area. A file in TILING_SPLIT
# is listed under two areas; its functions in TILING_FUNCS (and its #defines in TILING_DEFINES) are
# tiling, the rest belong to its other area.
TILING_FUNCS = {
    # src/model/vae.c: one pass (exact or tiled), the counting passes, the plan and its search, the run
    "pass", "count_pass", "check_size", "check_image_size", "fill_plan", "count_arena", "others_of", "plan_job",
    "exec_prepare", "latup_vae_exec_prepare", "latup_vae_enc_prepare", "latup_vae_exec_run",
    "latup_vae_plan_memory",
    # src/model/vae_blocks.c: the tiled pass and its tile ops
    "vae_tiled", "vae_copy_tile", "vae_blend_tile", "vae_divide_weights",
    # src/api/call.c: the tile and overlap options, the decode stage of a call
    "latup_call_opts_check", "decode", "decode_steps", "call_opts", "latup_vae_plan_decode", "latup_vae_decode",
}
TILING_DEFINES = {"MIN_TILE"}
TILING_SPLIT = {"src/model/vae.c": "numerics", "src/model/vae_blocks.c": "numerics", "src/api/call.c": "cli"}
AREA_FILES = {
    "numerics": ["src/ops/arena.c", "src/ops/conv.c", "src/ops/kernels.c", "src/ops/runtime.c", "src/model/exec.c",
                 "src/model/lua.c", "src/model/vae.c", "src/model/vae_blocks.c", "src/model/vae_enc.c",
                 "src/model/layers.c", "src/model/latent.c"],
    "readers": ["src/io/fileio.c", "src/io/json.c", "src/io/npy.c", "src/io/pickle.c", "src/io/png.c",
                "src/io/pth.c", "src/io/safetensors.c", "src/io/weights.c", "src/io/checkpoint.c",
                "src/io/zip.c", "src/model/lua_load.c", "src/model/vae_load.c"],
    "cli": ["src/cli/cli.c", "src/cli/compare.c", "src/cli/encode.c", "src/cli/eval.c", "src/cli/info.c",
            "src/cli/jsonw.c", "src/cli/main.c", "src/cli/options.c", "src/cli/pipeline.c", "src/cli/progress.c",
            "src/api/files.c", "src/api/host.c", "src/api/call.c", "src/api/system.c", "src/common.c",
            "src/model/gpu_none.c"],
    "tiling": ["src/model/vae.c", "src/model/vae_blocks.c", "src/model/tiling.h", "src/api/call.c"],
}
AREAS = ["numerics", "readers", "cli", "tiling"]
# Not mutated: the CUDA path (src/cuda/, no GPU in the test run); headers other than tiling.h (a change
# rebuilds the whole library).

# Mutants that run in the SANITIZE=1 build (ASan + UBSan, the arena's guard floats), with ASan's
# allocator filling every fresh heap block with 0xff bytes (NaN as floats), so a read of memory
# nobody wrote shows: the readers and the tiling areas, the arena, and every `init` mutant (a
# dropped initialisation is only seen when fresh memory is not zero). numerics and cli otherwise
# run in the plain build (faster). A list entry with status `asan: why` runs there too.
SAN_AREAS = {"readers", "tiling"}
SAN_FILES = {"src/ops/arena.c"}
SAN_OPS = {"init"}
POISON_ASAN = "malloc_fill_byte=255:max_malloc_fill_size=2147483647"
# and the mutated file is compiled with -ftrivial-auto-var-init=pattern there (uninitialised locals)

# Functions whose bugs no test can see by design (messages, timing, progress, dumps), left out.
SKIP_FUNCS = re.compile(r"(print|usage|dump|progress|timing|version|^sz$|^field$|json_string|help|^report$|"
                        r"dry_run_text|^now$|cli_now|_str$|_name$)")
# Calls whose arguments are text for a human (or a debugger): not mutated.
SKIP_CALLS = {"latup_fail", "fprintf", "printf", "snprintf", "vsnprintf", "fputs", "puts", "perror", "fputc",
              "latup_set_error", "assert", "usage_error", "cli_usage", "bad_value", "dump_chw", "dump_tokens",
              "dump", "latup_shape_str", "static_assert", "_Static_assert", "sizeof", "va_start", "va_end",
              "fflush", "omp_get_wtime"}
# Functions whose arguments commute (a swap is equivalent), and allocation (a swap of calloc's).
COMMUTATIVE = {"fminf", "fmaxf", "fmin", "fmax", "calloc", "memcmp", "strcmp", "strncmp", "latup_mul_ok",
               "latup_add_ok", "MIN", "MAX", "latup_arena_take3", "latup_arena_take2", "imin", "imax"}
TYPE_WORDS = {"int", "char", "float", "double", "size_t", "void", "long", "short", "unsigned", "signed", "const",
              "static", "struct", "uint8_t", "uint16_t", "uint32_t", "uint64_t", "int8_t", "int16_t", "int32_t",
              "int64_t", "ssize_t", "FILE", "off_t", "bool", "enum", "union", "volatile", "restrict"}
KEYWORDS = TYPE_WORDS | {"if", "else", "for", "while", "do", "return", "switch", "case", "break", "continue",
                         "goto", "default", "sizeof", "typedef", "inline"}
RELEASE = re.compile(r"^free$|_free$|_close$")
DROP_CALLS = {"fsync", "rename", "unlink", "close", "fclose", "memset", "memcpy", "latup_check_finite",
              "latup_check_finite_output", "latup_arena_check", "fflush", "remove", "latup_atomic_commit",
              "latup_atomic_abort", "cli_check_finite", "qsort"}

# The operator classes of issue 24 (see docs/testing.md):
# batch: an index that offsets by a per-element stride (`in + b * insz`, `(size_t)b * xsz`) made 0 or
# index + 1: every item reads or writes the first item's (or the next one's) slice.
BATCH_IDX = {"b", "bi", "ib", "bb", "n", "k", "img", "im", "item", "idx", "t", "ti"}
# loop: a loop over a count of outputs, inputs, files, images, items, paths or a batch that skips its
# last element (`i < n - 1`) or its first (`i = 1`).
LOOP_BOUND = re.compile(r"^(B|argc|n_\w+|\w*(count|outputs?|inputs?|files|images|imgs|batch|items|paths|list|"
                        r"nout|ninputs|noutputs)\w*)$")
# init: the initialisation of a reused buffer or accumulator dropped: a memset, calloc made malloc, an
# `= 0` store before a loop.
INIT_CALLS = {"memset"}
CALLOC = {"calloc": 2, "latup_calloc": 3}   # the number of arguments
ACC_INIT = re.compile(r"^\s*(?P<type>(?:float|double|int|unsigned|long|size_t|int64_t|uint64_t|int32_t|uint32_t)\s+)?"
                      r"(?P<lhs>[A-Za-z_]\w*(?:(?:->|\.)\w+)*(?:\[[^\]]*\])?)(?P<eq>\s*=\s*)"
                      r"(?P<zero>0|0\.0*f?|0\.f|0[uUlL]+)\s*;(?=\s*(?://.*|/\*.*\*/\s*)?$)")

# ---- the tests each area runs: tiers, fastest first; a later tier runs only if the mutant survives
# the earlier ones. (binary, tests or None for all). Timed on the 2-core machine: tier 1 takes
# 15-25 s per area, tier 2 30-60 s.
PLANS = {
    "numerics": [
        [("test_arena", None), ("test_model_edges", None), ("test_kernels", None),
         ("test_lua_golden", "test_golden_all_cases,test_golden_one_thread,test_pth_twins_bit_identical,"
                             "test_negative_control,test_bad_inputs"),
         ("test_vae_golden", "test_vae_small_all_namings,test_vae_tiled,test_vae_load_errors")],
        [("test_vae_golden", "test_vae_real_widths"), ("test_batches", None), ("test_api_contract", None),
         ("test_progress", None)],
    ],
    "readers": [
        [("test_npy", None), ("test_safetensors", None), ("test_corpus", None), ("test_fileio", None),
         ("test_png", None), ("test_api", None), ("test_api_contract", None), ("test_pth", None),
         ("test_lua_golden", "test_load_missing_tensor,test_load_wrong_shape,test_load_unexpected_tensor,"
                             "test_load_corrupt_header,test_pth_twins_bit_identical,test_load_bad_relative_index"),
         ("test_vae_golden", "test_vae_small_all_namings,test_vae_load_errors")],
        [("test_errors", None), ("test_cli", None), ("test_jsonw", None)],
    ],
    "cli": [
        [("test_options", None), ("test_jsonw", None), ("test_api", None), ("test_api_contract", None),
         ("test_cli_contract", None),
         ("test_errors", None)],
        [("test_cli", None), ("test_batches", None)],
    ],
    "tiling": [
        [("test_tiling", None), ("test_model_edges", None), ("test_vae_golden", "test_vae_tiled"),
         ("test_cli_contract", None)],
        [("test_vae_golden", "test_vae_tiled_golden,test_vae_budget,test_vae_small_all_namings"),
         ("test_batches", None), ("test_api_contract", None), ("test_progress", None),
         ("test_vae_encoder", "test_enc_tiled")],
    ],
}
# Files whose code the area's plan reaches only in part: their own tests, a tier run before the
# area's (the encoder has its own test binary; the loaders' bindings show in the golden outputs; the
# system report and the progress line have theirs).
FILE_TESTS = {
    "src/model/vae_enc.c": [("test_vae_encoder", "test_enc_small_all_namings,test_enc_negative_control,"
                                                 "test_enc_sample,test_enc_tiled,test_enc_patch,test_enc_errors")],
    "src/model/vae_load.c": [("test_vae_folder", None),
                             ("test_vae_encoder", "test_enc_small_all_namings,test_enc_errors")],
    "src/model/lua_load.c": [("test_lua_golden", "test_golden_all_cases")],
    "src/api/system.c": [("test_system", None)],
    "src/cli/progress.c": [("test_progress", None)],
}
# Test binaries that compile CLI sources into themselves (the others only exec build/latup).
CLI_INCLUDERS = {"test_options", "test_jsonw", "test_progress"}


def plan_of(m):
    """The tiers of tests a mutant runs: its file's own tests first, then its area's tiers."""
    extra = FILE_TESTS.get(m["file"])
    return ([extra] if extra else []) + PLANS[m["area"]]


def san_of(m):
    """1 when the mutant runs in the SANITIZE=1 build (SAN_AREAS, SAN_FILES, SAN_OPS, status asan)."""
    if m["status"].startswith("asan"):
        return True
    return not NO_SAN and (m["area"] in SAN_AREAS or m["file"] in SAN_FILES or op_class(m) in SAN_OPS)


NO_SAN = False     # run --plain: every mutant in the plain build, as before issue 24
POISON = True      # run --no-poison: the SANITIZE=1 build without ASan's malloc fill

# ---- a small C tokenizer: enough to tell code from comments, strings and preprocessor lines ------

TOKEN = re.compile(r"""
    (?P<ws>[ \t]+) |
    (?P<comment>//.*) |
    (?P<str>"(?:\\.|[^"\\])*") |
    (?P<chr>'(?:\\.|[^'\\])*') |
    (?P<num>(?:0[xX][0-9a-fA-F]+|\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)[uUlLfF]*) |
    (?P<id>[A-Za-z_]\w*) |
    (?P<op><<=|>>=|->|\+\+|--|<<|>>|<=|>=|==|!=|&&|\|\||\+=|-=|\*=|/=|%=|&=|\|=|\^=|[-+*/%<>=!&|^~?:;,.()\[\]{}])
""", re.X)


class Tok:
    __slots__ = ("kind", "text", "col", "line", "skip", "depth")

    def __init__(self, kind, text, col, line):
        self.kind, self.text, self.col, self.line, self.skip, self.depth = kind, text, col, line, False, 0


def tokenize(text):
    """Per line: the code tokens (comments, block comments and preprocessor lines left out, but
    `#define NAME number` kept). Returns {line number: [Tok]} and {line number: function name}."""
    lines = text.split("\n")
    toks, funcs = {}, {}
    in_block = False
    depth, paren, func, pending = 0, 0, None, None
    skip_stack = []  # paren depths at which a SKIP_CALLS call opened
    for ln, line in enumerate(lines, 1):
        out, i = [], 0
        stripped = line.strip()
        if not in_block and stripped.startswith("#"):
            m = re.match(r"\s*#\s*define\s+([A-Z_][A-Z0-9_]*)\s+(\(?-?[0-9][0-9.eEfFuUlLxX]*\)?)\s*(?:/[*/].*)?$", line)
            if m:
                t = Tok("num", m.group(2).strip("()"), line.index(m.group(2).strip("()"), m.start(2)), ln)
                toks[ln] = [t]
            funcs[ln] = func
            continue
        while i < len(line):
            if in_block:
                j = line.find("*/", i)
                if j < 0:
                    i = len(line)
                    break
                in_block, i = False, j + 2
                continue
            if line.startswith("/*", i):
                in_block, i = True, i + 2
                continue
            m = TOKEN.match(line, i)
            if not m:
                i += 1
                continue
            kind = m.lastgroup
            if kind not in ("ws", "comment"):
                out.append(Tok(kind, m.group(), i, ln))
            i = m.end()
        line_func = None  # a function opened and closed on this line (a header's one-line inline)
        for k, t in enumerate(out):
            t.depth = depth
            # track function bodies and calls whose arguments are not code to mutate
            if t.text == "(":
                prev = out[k - 1].text if k else ""
                if prev in SKIP_CALLS or re.match(r"dump", prev):
                    skip_stack.append(paren)
                paren += 1
                if depth == 0 and pending is None and k and out[k - 1].kind == "id":
                    pending = out[k - 1].text
            elif t.text == ")":
                paren -= 1
                if skip_stack and skip_stack[-1] == paren:
                    skip_stack.pop()
                    t.skip = True
            elif t.text == "{":
                if depth == 0:
                    func = line_func = pending
                depth += 1
            elif t.text == "}":
                depth -= 1
                if depth == 0:
                    func, pending = None, None
            elif t.text == ";" and depth == 0:
                pending = None
            if skip_stack:
                t.skip = True
        toks[ln] = out
        funcs[ln] = func or line_func or ("<data>" if depth > 0 else None)
    return lines, toks, funcs


# ---- candidate mutants --------------------------------------------------------------------------

CMP_SWAP = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "=="}
ARITH_SWAP = {"+": "-", "-": "+", "*": "/", "/": "*", "+=": "-=", "-=": "+="}


def matching(tl, k):
    """Index of the token closing the bracket opened at tl[k], on the same line, or -1."""
    pairs = {"(": ")", "[": "]"}
    o, c, d = tl[k].text, pairs[tl[k].text], 0
    for j in range(k, len(tl)):
        if tl[j].text == o:
            d += 1
        elif tl[j].text == c:
            d -= 1
            if d == 0:
                return j
    return -1


_TYPES = None


def type_names():
    """typedef'd names in src/ and include/: a `*` after one is a declaration, not a product."""
    global _TYPES
    if _TYPES is None:
        _TYPES = set(TYPE_WORDS)
        for d in ("src", "include"):
            for dp, _, fs in os.walk(os.path.join(ROOT, d)):
                for f in fs:
                    if f.endswith((".c", ".h")):
                        t = open(os.path.join(dp, f)).read()
                        _TYPES |= set(re.findall(r"^\s*\}\s*(\w+)\s*;", t, re.M))
                        _TYPES |= set(re.findall(r"typedef [^;{(]*?\b(\w+)\s*;", t))
                        _TYPES |= set(re.findall(r"typedef [^;]*\(\s*\*\s*(\w+)\s*\)", t))
    return _TYPES


# status codes and enum-like names: `x < LATUP_E_IO + 1` is not a plausible bug
NOT_OFF1 = re.compile(r"^(Z_|LATUP_(E_|OK|PK_|DT_|FILE_|JSON_|DEVICE|VAE_)|SEEK_|EOF$|NULL$|E[A-Z]+$|true$|false$)")


def opener_word(tl, k):
    """The token before the `(` that the `)` at tl[k] closes."""
    d = 0
    for j in range(k, -1, -1):
        d += tl[j].text == ")"
        d -= tl[j].text == "("
        if d == 0:
            return tl[j - 1].text if j else ""
    return ""


def is_operand_end(t):
    return t.kind in ("id", "num") and t.text not in KEYWORDS or t.text in (")", "]")


def candidates(path, rng):
    """Every site of every operator in one file, as (line, op, col, orig, repl)."""
    text = open(os.path.join(ROOT, path)).read()
    lines, toks, funcs = tokenize(text)
    decls = declared_types(text)
    out = []
    for ln, tl in toks.items():
        line = lines[ln - 1]
        fn = funcs.get(ln)
        define = line.lstrip().startswith("#")
        if not tl or (fn and SKIP_FUNCS.search(fn)) or (fn is None and not define):
            continue
        if re.search(r"\b(verbose|progress|timings?|tm\[|LATUP_DEVICE_CUDA|cli_now|t0)\b|gpu_|#\s*define\s+_", line):
            continue
        if re.match(r"\s*(static\s+)?(const\s+)?char\s+\w+\s*\[", line):
            continue  # a text buffer's size

        def add(op, a, b, repl, why=""):
            out.append((ln, op, a, line[a:b], repl))

        if fn and fn != "<data>":
            acc = ACC_INIT.match(line)
            if acc and loop_follows(lines, ln) and accumulates(lines, ln, acc.group("lhs")):
                if acc.group("type"):  # `float s = 0.0f;` -> `float s;`
                    add("init", acc.start("eq"), acc.end("zero"), "")
                else:                  # `s = 0;` -> `(void)0;`
                    add("init", acc.start("lhs"), acc.end(), "(void)0;")
        if define:
            t = tl[0]
            v = parse_num(t.text)
            if v is not None and v >= 2:
                add("const", t.col, t.col + len(t.text), scale(t.text, rng))
            continue
        for k, t in enumerate(tl):
            if t.skip or (t.depth == 0 and fn != "<data>"):
                continue
            prev = tl[k - 1] if k else None
            nxt = tl[k + 1] if k + 1 < len(tl) else None
            end = t.col + len(t.text)
            if t.kind == "id" and t.text in BATCH_IDX and batch_site(tl, k):
                add("batch", t.col, end, "0" if rng.random() < .5 else "(%s + 1)" % t.text)
            if t.text == "for" and nxt and nxt.text == "(":
                loop_sites(tl, k, add, line)
            if t.kind == "op" and t.text in CMP_SWAP and prev and is_operand_end(prev):
                add("cmp", t.col, end, CMP_SWAP[t.text])
                # off by one on the right operand of a comparison
                if nxt and not nxt.skip and (nxt.kind == "num" or (nxt.kind == "id" and nxt.text not in KEYWORDS
                                                                   and not NOT_OFF1.match(nxt.text))):
                    after = tl[k + 2] if k + 2 < len(tl) else None
                    if nxt.kind == "num" or not after or after.text not in ("(", ".", "->", "["):
                        if nxt.kind == "num" and parse_int(nxt.text) is not None:
                            v = parse_int(nxt.text)
                            add("off1", nxt.col, nxt.col + len(nxt.text), str(v + 1 if v == 0 or rng.random() < .5 else v - 1))
                        elif nxt.kind == "id":
                            add("off1", nxt.col, nxt.col + len(nxt.text), nxt.text + (" + 1" if rng.random() < .5 else " - 1"))
            elif t.kind == "op" and t.text in ARITH_SWAP and prev and is_operand_end(prev):
                if t.text in ("*", "/") and (prev.text in TYPE_WORDS or prev.text.endswith("_t") or
                                             (nxt and nxt.text in ("const", "*"))):
                    continue
                if t.text == "*" and prev.text == ")" and opener_word(tl, k - 1) in ("if", "while", "for", "switch"):
                    continue  # `if (p) *q = 0`: a dereference
                if t.text == "*" and prev.kind == "id" and (
                        prev.text in type_names() or k == 1 or tl[k - 2].text in ("struct", "union", "enum", "const")):
                    continue  # a declaration: `foo *x`
                if t.text in ("+", "-") and nxt and nxt.kind == "num" and nxt.text == "1":
                    add("off1", t.col, nxt.col + 1, "+ 2" if t.text == "+" else "- 0")
                else:
                    add("arith", t.col, end, ARITH_SWAP[t.text])
            elif t.text == "[" and nxt and nxt.kind == "id" and k + 2 < len(tl) and tl[k + 2].text == "]":
                add("off1", nxt.col, nxt.col + len(nxt.text), nxt.text + " + 1")
            elif t.kind == "num":
                v = parse_num(t.text)
                if v is None or v < 2 or (prev and prev.text == "[" and k >= 2 and tl[k - 2].kind == "id"
                                          and k >= 3 and tl[k - 3].text in TYPE_WORDS):
                    continue
                if prev and prev.text in ("case",):
                    continue
                add("const", t.col, end, scale(t.text, rng))
            elif t.text == "if" and nxt and nxt.text == "(":
                j = matching(tl, k + 1)
                if j < 0:
                    continue
                rest = line[tl[j].col + 1:].strip()
                if not rest and ln < len(lines):
                    rest = lines[ln].strip()
                if re.match(r"(return\b|goto\b|TRY\b|break\b|continue\b|st\s*=\s*latup_fail|\{?\s*return)", rest):
                    if "return LATUP_OK" in rest or rest.startswith("return 1;"):
                        continue
                    add("check", t.col, tl[j].col + 1, "if (0)")
            elif (t.kind == "id" and nxt and nxt.text == "(" and t.text not in KEYWORDS and t.text not in SKIP_CALLS
                  and not SKIP_FUNCS.search(t.text)):
                j = matching(tl, k + 1)
                if j < 0:
                    continue
                # a call that is its whole statement: dropped
                first = tl[0]
                if RELEASE.search(t.text) or (k == 2 and RELEASE.search(tl[0].text)):
                    pass  # a dropped release is a leak: make test SANITIZE=1 (LeakSanitizer) finds those
                elif k == 0 and j + 1 < len(tl) and tl[j + 1].text == ";" and j + 2 == len(tl):
                    add("init" if t.text in INIT_CALLS else "call", t.col, tl[j + 1].col + 1, "(void)0;")
                elif (k == 2 and first.text == "TRY" and j + 2 < len(tl) and tl[j + 2].text == ";"):
                    add("call", first.col, tl[j + 2].col + 1, "(void)0;")
                elif t.text in DROP_CALLS and not (k == 0):
                    add("init" if t.text in INIT_CALLS else "call", t.col, tl[j].col + 1, "0")
                if t.text in CALLOC:  # calloc(a, b) -> malloc(a * b): the block no longer zeroed
                    args = split_args(tl, k + 1, j)
                    if len(args) == CALLOC[t.text]:
                        txt = [line[tl[a].col:tl[b - 1].col + len(tl[b - 1].text)] for a, b in args]
                        prod = " * ".join(x if b - a == 1 else "(%s)" % x for x, (a, b) in zip(txt[:2], args))
                        add("init", t.col, tl[j].col + 1,
                            t.text.replace("calloc", "malloc") + "(" + ", ".join([prod] + txt[2:]) + ")")
                # swapped arguments: two adjacent simple arguments
                if t.text not in COMMUTATIVE and not t.text.startswith(("mem", "str", "latup_arena_take")):
                    args = split_args(tl, k + 1, j)
                    simple = [(a, b) for a, b in args if b - a == 1 and tl[a].kind in ("id", "num")]
                    for (a1, b1), (a2, b2) in zip(args, args[1:]):
                        if ((a1, b1) in simple and (a2, b2) in simple and tl[a1].text != tl[a2].text
                                and same_type(decls, tl[a1], tl[a2])):
                            s = tl[a1].col
                            e = tl[a2].col + len(tl[a2].text)
                            add("swap", s, e, tl[a2].text + line[tl[a1].col + len(tl[a1].text):tl[a2].col] + tl[a1].text)
                            break
    # the same edit found by two operators (a loop's `n - 1` is also an off1): once, as the newer class
    rank = {"batch": 0, "loop": 0, "init": 0}
    seen = {}
    for c in out:
        key = (c[0], c[2], c[3], c[4])
        if key not in seen or rank.get(c[1], 1) < rank.get(seen[key][1], 1):
            seen[key] = c
    return [c for c in out if seen[(c[0], c[2], c[3], c[4])] is c]


def batch_site(tl, k):
    """tl[k] is an index that offsets by a per-element stride: `base + b * stride`, `+ (size_t)b * ...`,
    `[n * stride ...`, `= k * stride`; not a size (`n * sizeof x`, `n * 4`)."""
    if k + 2 >= len(tl) or tl[k + 1].text != "*":
        return False
    stride = tl[k + 2]
    if stride.text == "sizeof" or not (stride.kind == "id" or stride.text == "("):
        return False
    j = k - 1
    if j >= 2 and tl[j].text == ")" and tl[j - 2].text == "(" and (tl[j - 1].text in TYPE_WORDS
                                                                   or tl[j - 1].text.endswith("_t")):
        j -= 3  # a cast: (size_t)b
    return j >= 0 and tl[j].text in ("+", "[", "=", "+=")


def loop_sites(tl, k, add, line):
    """`for (V = 0; V < BOUND ...; ...)` over a count of outputs, inputs, files, images, items or a batch
    (LOOP_BOUND, or a struct's `->n`): the last one skipped (`BOUND - 1`) and the first (`= 1`)."""
    j = matching(tl, k + 1)
    if j < 0 or (j + 1 < len(tl) and tl[j + 1].text in SKIP_CALLS):
        return  # a header over several lines, or a loop that only prints
    semis = [i for i in range(k + 2, j) if tl[i].text == ";"]
    if len(semis) != 2:
        return
    init, cond = tl[k + 2:semis[0]], tl[semis[0] + 1:semis[1]]
    if len(cond) < 3 or cond[0].kind != "id" or cond[1].text not in ("<", "<="):
        return
    chain = [cond[2]]
    i = 3
    while i + 1 < len(cond) and cond[i].text in ("->", ".") and cond[i + 1].kind == "id":
        chain += cond[i:i + 2]
        i += 2
    if chain[0].kind != "id" or (i < len(cond) and cond[i].text not in ("&&", "||")):
        return
    last = chain[-1].text
    if not (LOOP_BOUND.match(last) or (len(chain) > 1 and last == "n")):
        return
    a, b = chain[0].col, chain[-1].col + len(last)
    add("loop", a, b, line[a:b] + " - 1")
    if len(init) >= 3 and init[-3].text == cond[0].text and init[-2].text == "=" and init[-1].text == "0":
        add("loop", init[-1].col, init[-1].col + 1, "1")


def accumulates(lines, ln, lhs):
    """lhs (set to 0 on line ln, 1-based) is an accumulator: the next lines add to it (`s += `, `n++`,
    `peak = x > peak ? x : peak`), not only overwrite it (a flag set to 1, a counter reset)."""
    name = re.escape(re.sub(r"\[.*", "", lhs))
    upd = re.compile(r"(?:\b%s\s*(?:\[[^\]]*\]\s*)?(?:\+\+|--|[-+*|&^]=|=[^=].*\b%s\b))|(?:(?:\+\+|--)%s\b)"
                     % (name, name, name))
    return any(upd.search(l) for l in lines[ln:ln + 12])


def loop_follows(lines, ln):
    """A loop starts on one of the two code lines after line ln (1-based)."""
    seen = 0
    for l in lines[ln:ln + 4]:
        l = l.strip()
        if not l or l.startswith(("//", "/*", "*")):
            continue
        if re.match(r"(for|while)\s*\(|do\b|#\s*pragma\s+omp", l):
            return True
        seen += 1
        if seen == 2:
            return False
    return False


NUMERIC = {"int", "size_t", "int64_t", "uint64_t", "int32_t", "uint32_t", "long", "unsigned", "double", "float",
           "uint8_t", "uint16_t", "short", "ssize_t", "off_t", "latup_status"}


def declared_types(text):
    """name -> the types it is declared with in this file (roughly): a swap of two arguments is
    only planted when their types agree, so that it compiles and is a plausible slip."""
    types = type_names()
    out = {}
    for m in re.finditer(r"\b(\w+)\s*(\**)\s*(?:const\s+)?(\w+)\s*(?=[,;=)\[])", text):
        ty, star, name = m.group(1), m.group(2), m.group(3)
        if ty in types and name not in types:
            out.setdefault(name, set()).add(ty + star)
    return out


def same_type(decls, a, b):
    def kinds(t):
        if t.kind == "num":
            return {"num"}
        return decls.get(t.text, {"?" + t.text})
    ka, kb = kinds(a), kinds(b)
    if "num" in ka:
        ka = NUMERIC | {"num"}
    if "num" in kb:
        kb = NUMERIC | {"num"}
    return bool(ka & kb)


def split_args(tl, k, j):
    args, d, start = [], 0, k + 1
    for i in range(k + 1, j):
        if tl[i].text in "([":
            d += 1
        elif tl[i].text in ")]":
            d -= 1
        elif tl[i].text == "," and d == 0:
            args.append((start, i))
            start = i + 1
    if start < j:
        args.append((start, j))
    return args


def parse_int(s):
    m = re.fullmatch(r"(0[xX][0-9a-fA-F]+|\d+)[uUlL]*", s)
    return int(m.group(1), 0) if m and not (len(m.group(1)) > 1 and m.group(1)[0] == "0" and m.group(1)[1] not in "xX") else None


def parse_num(s):
    v = parse_int(s)
    if v is not None:
        return v
    try:
        return float(s.rstrip("fFlL"))
    except ValueError:
        return None


def scale(s, rng):
    v = parse_int(s)
    if v is not None:
        suffix = re.search(r"[uUlL]*$", s).group()
        n = v * 2 if v % 2 or rng.random() < .5 else v // 2
        return (hex(n) if s[:2] in ("0x", "0X") else str(n)) + suffix
    suffix = re.search(r"[fFlL]*$", s).group()
    f = float(s.rstrip("fFlL"))
    return repr(f * 2 if rng.random() < .5 else f / 2) + suffix


# ---- the list -------------------------------------------------------------------------------------

FIELDS = ["id", "area", "op", "file", "line", "col", "orig", "repl", "status", "site"]


def area_of(path, fn, site):
    """The area of a site: a TILING_SPLIT file's tiling functions and defines are tiling, the rest of it
    is its other area; any other file is the area that lists it."""
    if path in TILING_SPLIT:
        if fn is None:
            return "tiling" if any(d in site for d in TILING_DEFINES) else TILING_SPLIT[path]
        return "tiling" if fn in TILING_FUNCS else TILING_SPLIT[path]
    for a in AREAS:
        if path in AREA_FILES[a]:
            return a
    return None


def generate(seed, per_area):
    rng = random.Random(seed)
    by_area = {a: {} for a in AREAS}
    for a in AREAS:
        for path in AREA_FILES[a]:
            lines, _, funcs = tokenize(open(os.path.join(ROOT, path)).read())
            for c in candidates(path, rng):
                ar = area_of(path, funcs.get(c[0]), lines[c[0] - 1])
                if ar == a:
                    by_area[a].setdefault(path, []).append(c)
    mutants = []
    for a in AREAS:
        files = by_area[a]
        total = sum(len(v) for v in files.values())
        quota = {f: max(2, round(per_area * len(v) / total)) for f, v in files.items()}
        tag = a[0].upper()
        picked = []
        for f in sorted(files):
            ops = {}
            for c in files[f]:
                ops.setdefault(c[1], []).append(c)
            for v in ops.values():
                rng.shuffle(v)
            chosen, used_lines = [], set()
            order = sorted(ops)
            rng.shuffle(order)  # the round-robin starts anywhere: with a quota of 2, not always arith and batch
            while len(chosen) < quota[f] and any(ops.values()):
                for op in order:
                    while ops[op] and len(chosen) < quota[f]:
                        c = ops[op].pop()
                        if (c[0], c[1]) in used_lines:
                            continue
                        used_lines.add((c[0], c[1]))
                        chosen.append(c)
                        break
            picked += [(f,) + c for c in sorted(chosen)]
        for n, (f, ln, op, col, orig, repl) in enumerate(picked, 1):
            lines = open(os.path.join(ROOT, f)).read().split("\n")
            line = lines[ln - 1]
            ind = len(line) - len(line.lstrip())
            mutants.append({"id": "%s%03d" % (tag, n), "area": a, "op": op, "file": f, "line": str(ln),
                            "col": str(col - ind), "orig": orig, "repl": repl, "status": "-", "site": line.strip()})
    return mutants


def write_list(mutants, f, seed, fresh=False):
    if fresh:
        f.write("# A fresh mutant list: `tools/mutate/mutate.py generate --seed %d` on the tree at %s, written by\n"
                "# `mutate.py run --fresh` (not reviewed; the committed regression set is tools/mutate/mutants.txt).\n"
                "# Statuses carried from tools/mutate/equivalents.txt and the committed list. To mark a survivor\n"
                "# equivalent for every later fresh run: copy its line into tools/mutate/equivalents.txt and put\n"
                "# `equivalent: why` in its status column.\n" % (seed, tree_version()))
    else:
        f.write("# tools/mutate/mutants.txt — latup's mutants for tools/mutate/mutate.py (issue 9). Made by\n"
                "# `tools/mutate/mutate.py generate --seed %d`, then reviewed. Status: '-' (run in the plain build);\n"
                "# 'equivalent: why' (no observable difference: not run, not counted); 'asan: why' (a memory error\n"
                "# or leak only a sanitizer sees: run in the SANITIZE=1 build, as CI's make test SANITIZE=1 would).\n"
                "# One mutant a line,\n" % seed)
    f.write("# tab-separated: id, area, operator, file, line, column in the stripped line, original text,\n"
            "# replacement, status, the stripped line itself (to find it again when lines move).\n")
    f.write("#" + "\t".join(FIELDS) + "\n")
    for m in mutants:
        f.write("\t".join(m[k] for k in FIELDS) + "\n")


def tree_version():
    """The commit of the tree the mutants are drawn from (and -dirty): a fresh list depends on the source."""
    rc, out, _ = sh(["git", "describe", "--always", "--dirty", "--abbrev=12"], ROOT, 30)
    return out.strip() if rc == 0 and out.strip() else "(not a git checkout)"


def op_class(m):
    """The mutant's operator; the committed list's memset drops (`call` there) are `init`, as generate
    calls them now."""
    return "init" if m["op"] == "call" and m["orig"].startswith("memset(") else m["op"]


def equiv_key(m):
    return (m["file"], op_class(m), m["site"], m["orig"])


def known_statuses(path):
    """Statuses other than '-' known for a site: the equivalents file (the user's, for fresh runs) and the
    committed list (its reviewed equivalents and asan entries). {(file, op, site, orig): [(repl, status)]};
    a repl of `*` matches any replacement."""
    known = {}
    sources = [LIST] + ([path] if path and os.path.exists(path) else [])
    for src in sources:
        for m in read_list(src):
            if m["status"] != "-":
                known.setdefault(equiv_key(m), []).append((m["repl"], m["status"]))
    return known


def apply_known(mutants, known):
    """Marks the mutants whose file, operator, line text, original and replacement a known entry has."""
    n = 0
    for m in mutants:
        if m["status"] != "-":
            continue
        for repl, status in known.get(equiv_key(m), []):
            if repl in ("*", m["repl"]):
                m["status"] = status
                n += 1
                break
    return n


def read_list(path=LIST):
    out = []
    for raw in open(path):
        raw = raw.rstrip("\n")
        if not raw or raw.startswith("#"):
            continue
        parts = raw.split("\t")
        if len(parts) != len(FIELDS):
            sys.exit("mutate: %s: %d fields, expected %d: %s" % (path, len(parts), len(FIELDS), raw[:80]))
        out.append(dict(zip(FIELDS, parts)))
    return out


def locate(m, lines):
    """The line (0-based) the mutant applies to: its line if the text is still there, else the
    nearest line with the same stripped text; None when it is gone (stale)."""
    ln = int(m["line"]) - 1
    if 0 <= ln < len(lines) and lines[ln].strip() == m["site"]:
        return ln
    hits = [i for i, l in enumerate(lines) if l.strip() == m["site"]]
    return min(hits, key=lambda i: abs(i - ln)) if hits else None


def mutate_text(m, text):
    lines = text.split("\n")
    i = locate(m, lines)
    if i is None:
        return None
    line = lines[i]
    ind = len(line) - len(line.lstrip())
    col = ind + int(m["col"])
    if line[col:col + len(m["orig"])] != m["orig"]:
        return None
    lines[i] = line[:col] + m["repl"] + line[col + len(m["orig"]):]
    return "\n".join(lines)


# ---- running ------------------------------------------------------------------------------------

def log(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def sh(cmd, cwd, timeout, env=None, cpu_limit=None):
    """Runs cmd in its own process group; kills the group at the (wall) timeout. cpu_limit: seconds
    of CPU each process may use (RLIMIT_CPU, SIGXCPU past it): a mutant that loops is stopped by
    the CPU it burns, not by the clock, so a test starved by other work on the machine is not
    taken for a hang. (rc, output, seconds)."""
    def limit():
        if cpu_limit:
            c = int(cpu_limit) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (c, c + 5))
    t0 = time.time()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                         start_new_session=True, shell=isinstance(cmd, str), preexec_fn=limit)
    try:
        outb, _ = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        outb, _ = p.communicate()
        rc = "timeout"
    return rc, outb.decode("utf-8", "replace"), time.time() - t0


def copy_tree(src, dst):
    if os.path.exists(dst):
        shutil.rmtree(dst)
    skip = {".git", "build-fuzz", "build-cuda", "build-cuda-san", ".venv", "__pycache__", "mutate"}
    shutil.copytree(src, dst, symlinks=True, ignore=lambda d, names: [n for n in names if n in skip])


# A swapped pair of arguments of different types is a compile error, not a mutant.
MUTANT_CC = os.environ.get("CC", "cc") + " -Werror=int-conversion -Werror=incompatible-pointer-types"


class Worker:
    def __init__(self, i, shim):
        self.dir = os.path.join(WORK, "w%d" % i)
        self.shim = shim
        self.times = {}

    def build(self, tests, san=False):
        """make the CLI and the test binaries (san: the SANITIZE=1 build, in build-san/). Tests
        that only exec latup are not recompiled for a change in a CLI source (make -o)."""
        cli_srcs = sorted(os.path.relpath(os.path.join(d, f), ROOT) for d in [os.path.join(ROOT, "src", "cli")]
                          for f in os.listdir(d) if f.endswith(".c")) + ["fuzz/fuzz_cli_opts.c"]
        b = "build-san" if san else "build"
        inc = [b + "/tests/" + t for t in tests if t in CLI_INCLUDERS]
        rest = [b + "/tests/" + t for t in tests if t not in CLI_INCLUDERS]
        # the sanitizer build also fills uninitialised locals (of the files compiled with it: the mutated
        # one) with a pattern (GCC 12+, clang), so a dropped `double s = 0.0` shows like a heap block
        cc = MUTANT_CC + (" -ftrivial-auto-var-init=pattern" if san and POISON else "")
        make = ["make", "-j1", "CC=" + cc] + (["SANITIZE=1"] if san else [])
        rc, out, _ = sh(make + [b + "/latup", b + "/liblatup.a"] + inc, self.dir, 1800)
        if rc == 0 and rest:
            rc, out2, _ = sh(make + sum([["-o", f] for f in cli_srcs], []) + rest, self.dir, 600)
            out += out2
        return rc, out

    def run_test(self, binary, names, limits, san=False):
        """limits: (cpu seconds per process, wall seconds)."""
        # passive waits: a test that asks for 2 threads must not spin while the machine is busy
        env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
        if names:
            env["MUTATE_TESTS"], env["LD_PRELOAD"] = names, self.shim
        if san:  # the shim is not an ASan library: let it come first; fresh heap blocks are 0xff (NaN)
            env["ASAN_OPTIONS"] = "verify_asan_link_order=0" + (":" + POISON_ASAN if POISON else "")
        return sh([("build-san" if san else "build") + "/tests/" + binary], self.dir, limits[1], env,
                  cpu_limit=limits[0])


def plan_keys(m):
    """The (binary, tests, san) a mutant may run, in order."""
    san = san_of(m)
    return [(b, n, san) for tier in plan_of(m) for b, n in tier]


def run_mutant(w, m, timeouts):
    path = os.path.join(w.dir, m["file"])
    orig = open(path).read()
    mutated = mutate_text(m, orig)
    if mutated is None:
        return "stale", "", 0.0
    t0 = time.time()
    try:
        with open(path, "w") as f:
            f.write(mutated)
        san = san_of(m)
        rc, out = w.build(sorted({b for b, _, _ in plan_keys(m)}), san)
        if rc != 0:
            return "stillborn", last_error(out), time.time() - t0
        for tier in plan_of(m):
            for binary, names in tier:
                rc, out, _ = w.run_test(binary, names, timeouts[(binary, names, san)], san)
                if rc != 0:
                    what = ("timeout" if rc == "timeout" else "cpu limit" if rc == -signal.SIGXCPU
                            else "signal %d" % -rc if rc < 0 else "exit %d" % rc)
                    return "killed", "%s%s (%s)" % (binary, failed_names(out), what), time.time() - t0
        return "survived", "", time.time() - t0
    finally:
        with open(path, "w") as f:  # a fresh mtime: the next build recompiles the original
            f.write(orig)


def failed_names(out):
    names = re.findall(r"\[  FAILED  \] ([A-Za-z_]\w*)", out)
    return (" " + ",".join(dict.fromkeys(names))) if names else ""


def last_error(out):
    errs = [l for l in out.split("\n") if "error" in l]
    return errs[0][:200] if errs else out.strip().split("\n")[-1][:200]


def new_seed():
    return int.from_bytes(os.urandom(4), "little") & 0x7fffffff


def repeat_commands(args):
    """The commands that repeat this run (the seeds filled in): make's, when the run is one it spells,
    and mutate.py's."""
    py = ["tools/mutate/mutate.py", "run"]
    if args.fresh:
        py += ["--fresh", "--gen-seed", str(args.gen_seed)]
        if args.per_area != 50:
            py += ["--per-area", str(args.per_area)]
    elif os.path.abspath(args.list) != LIST:
        py += ["--list", os.path.relpath(args.list, ROOT)]
    if args.sample:
        py += ["--sample", str(args.sample), "--seed", str(args.seed)]
    extra = []
    for flag, v in (("--area", args.area), ("--ids", args.ids), ("--skip-tests", args.skip_tests)):
        if v:
            extra += [flag, v]
    extra += (["--plain"] if args.plain else []) + (["--no-poison"] if args.no_poison else [])
    if os.path.abspath(args.equivalents) != EQUIVALENTS:
        extra += ["--equivalents", os.path.relpath(args.equivalents, ROOT)]
    out = []
    if not extra and args.jobs == 2 and args.per_area == 50:
        if args.fresh and args.sample:
            out.append("make mutate SEED=%d SAMPLE_SEED=%d%s" % (args.gen_seed, args.seed,
                                                                  "" if args.sample == 80 else " N=%d" % args.sample))
        elif not args.fresh and os.path.abspath(args.list) == LIST and args.sample in (0, 40):
            out.append("make mutate LIST=1" + (" SAMPLE=1 SAMPLE_SEED=%d" % args.seed if args.sample else ""))
    out.append(" ".join(py + extra + ([] if args.jobs == 2 else ["--jobs", str(args.jobs)])))
    return out


def cmd_run(args):
    global NO_SAN, POISON
    NO_SAN, POISON = args.plain, not args.no_poison
    if args.sample is None:  # --ids names the mutants: no sample
        args.sample = 80 if args.fresh and not args.ids else 0
    if args.sample and args.seed is None:
        args.seed = new_seed()
    head = []
    known = known_statuses(args.equivalents)
    if args.fresh:
        if args.gen_seed is None:
            args.gen_seed = new_seed()
        mutants = generate(args.gen_seed, args.per_area)
        n_known = apply_known(mutants, known)
        path = os.path.join(ROOT, "build", "mutate", "fresh-%d.txt" % args.gen_seed)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            write_list(mutants, f, args.gen_seed, fresh=True)
        head.append("mutate: fresh list: generator seed %d, %d mutants (%d marked from %s and the committed list), "
                    "written to %s; tree %s" % (args.gen_seed, len(mutants), n_known,
                                                os.path.relpath(args.equivalents, ROOT), os.path.relpath(path, ROOT),
                                                tree_version()))
    else:
        mutants = read_list(args.list)
        n_known = apply_known(mutants, known)
        head.append("mutate: list %s (%d mutants; %d more marked from %s); tree %s" % (
            os.path.relpath(args.list, ROOT), len(mutants), n_known, os.path.relpath(args.equivalents, ROOT),
            tree_version()))
    if args.area:
        mutants = [m for m in mutants if m["area"] in args.area.split(",")]
    if args.ids:
        want = set(args.ids.split(","))
        mutants = [m for m in mutants if m["id"] in want]
    equiv = [m for m in mutants if m["status"].startswith("equivalent")]
    todo = [m for m in mutants if not m["status"].startswith("equivalent")]
    if args.skip_tests:  # e.g. the suite as it was before tests were added for the survivors
        skip = set(args.skip_tests.split(","))
        for a in PLANS:
            PLANS[a] = [[t for t in tier if t[0] not in skip] for tier in PLANS[a]]
        for f in FILE_TESTS:
            FILE_TESTS[f] = [t for t in FILE_TESTS[f] if t[0] not in skip]
    if args.sample:
        rng = random.Random(args.seed)
        per = {a: [m for m in todo if m["area"] == a] for a in AREAS}
        n_area = max(1, args.sample // max(1, len([a for a in AREAS if per[a]])))
        todo = sum([sorted(rng.sample(per[a], min(n_area, len(per[a]))), key=lambda m: m["id"]) for a in AREAS], [])
        head.append("mutate: sample of %d (%d per area), sample seed %d; %d equivalent left out before the draw" %
                    (len(todo), n_area, args.seed, len(equiv)))
        equiv = []
    head += ["repeat: " + c for c in repeat_commands(args)]
    for h in head:
        log(h)
    t_start = time.time()
    os.makedirs(WORK, exist_ok=True)
    shim = os.path.join(WORK, "cmocka_select.so")
    rc, out, _ = sh(["cc", "-O1", "-shared", "-fPIC", "-o", shim, os.path.join(ROOT, "tools", "mutate", "cmocka_select.c"),
                     "-ldl"], ROOT, 120)
    if rc != 0:
        sys.exit("mutate: cannot build the test selector:\n" + out)
    workers = [Worker(i, shim) for i in range(args.jobs)]
    keys = list(dict.fromkeys(k for m in todo for k in plan_keys(m)))
    plain_tests = sorted({b for b, _, san in keys if not san})
    san_tests = sorted({b for b, _, san in keys if san})
    n_san = sum(1 for m in todo if san_of(m))
    log("mutate: %d mutants to run (%d equivalent, not run; %d in the SANITIZE=1 build%s); %d workers in %s/w*; "
        "tests %s; SANITIZE=1 tests %s" % (len(todo), len(equiv), n_san,
                                           ", fresh heap blocks 0xff" if POISON and n_san else "", len(workers), WORK,
                                           " ".join(plain_tests) or "-", " ".join(san_tests) or "-"))

    copy_tree(args.source, workers[0].dir)
    for tests, san in ((plain_tests, False), (san_tests, True)):
        if tests or not san:
            rc, out = workers[0].build(tests, san)
            if rc != 0:
                sys.exit("mutate: the unmutated tree does not build%s:\n%s" % (" (SANITIZE=1)" if san else "",
                                                                               out[-3000:]))
    for w in workers[1:]:
        if os.path.exists(w.dir):
            shutil.rmtree(w.dir)
        shutil.copytree(workers[0].dir, w.dir, symlinks=True)
    log("mutate: trees ready in %.0f s" % (time.time() - t_start))
    # baseline: every test of the plan passes on the unmutated tree (in each build a mutant uses);
    # its time sets the timeout
    timeouts, failures, lock = {}, [], threading.Lock()
    pending = list(keys)

    def baseline(w):
        while not args.no_baseline:
            with lock:
                if not pending:
                    return
                binary, names, san = pending.pop(0)
            rc, out, secs = w.run_test(binary, names, (3600, 7200), san)
            with lock:
                if rc != 0:
                    failures.append("%s%s (%s):\n%s" % (binary, " [SANITIZE=1]" if san else "", rc, out[-3000:]))
                # CPU: 4x the baseline's wall time (at least 20 s); wall: a hang that burns no CPU
                timeouts[(binary, names, san)] = (max(20.0, 4 * secs), max(300.0, 20 * secs))
                log("  baseline %-16s %-40s %-4s %6.1f s" % (binary, (names or "all")[:40], "san" if san else "", secs))
    threads = [threading.Thread(target=baseline, args=(w,)) for w in workers]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for k in keys if args.no_baseline else []:
        timeouts[k] = (600.0, 1200.0) if k[2] else (150.0, 300.0)
    if failures:
        sys.exit("mutate: tests fail on the unmutated tree%s: %s" % (
            " (in the SANITIZE=1 build with fresh heap blocks poisoned, --no-poison runs it without)"
            if POISON and any("[SANITIZE=1]" in f for f in failures) else "", "\n".join(failures)))
    log("mutate: baseline done in %.0f s" % (time.time() - t_start))

    queue = sorted(todo, key=lambda m: (m["file"], int(m["line"])))
    results = {}

    def work(w):
        while True:
            with lock:
                if not queue:
                    return
                m = queue.pop(0)
            verdict, detail, secs = run_mutant(w, m, timeouts)
            with lock:
                results[m["id"]] = (verdict, detail, secs)
                log("%-5s %-9s %5.1f s  %s:%s %s `%s` -> `%s`  %s" % (m["id"], verdict, secs, m["file"], m["line"],
                                                                    m["op"], m["orig"], m["repl"], detail))
    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    [t.start() for t in threads]
    [t.join() for t in threads]
    text = "\n".join(head) + "\n" + report(todo, equiv, results, time.time() - t_start, args)
    log(text)
    os.makedirs(os.path.dirname(args.report), exist_ok=True)
    with open(args.report, "w") as f:
        f.write(text)
    log("mutate: report written to %s" % args.report)
    for w in workers:
        shutil.rmtree(w.dir, ignore_errors=True)
    return 0


def report(todo, equiv, results, secs, args):
    r = []
    mode = ("sampled %d (seed %d)" % (len(todo), args.seed) if args.sample else
            "%d chosen (--ids/--area)" % len(todo) if getattr(args, "ids", "") or getattr(args, "area", "") else
            "full list")
    if getattr(args, "fresh", False):
        mode += " of fresh list %d" % args.gen_seed
    r.append("mutation run: %s, %d workers, %.0f s wall (%.1f min)" % (mode, args.jobs, secs, secs / 60))
    per_file, per_area = {}, {}
    for m in todo:
        v = results.get(m["id"], ("not run", "", 0))[0]
        for d, k in ((per_file, m["file"] + (" [tiling]" if m["area"] == "tiling" else "")), (per_area, m["area"])):
            d.setdefault(k, {}).setdefault(v, 0)
            d[k][v] += 1
    for m in equiv:
        per_area.setdefault(m["area"], {}).setdefault("equivalent", 0)
        per_area[m["area"]]["equivalent"] += 1

    def line(name, c):
        k, s = c.get("killed", 0), c.get("survived", 0)
        pct = "%5.1f%%" % (100.0 * k / (k + s)) if k + s else "    - "
        extra = ", ".join("%s %d" % (v, c[v]) for v in ("equivalent", "stillborn", "stale", "not run") if c.get(v))
        return "  %-34s killed %3d/%-3d %s  %s" % (name, k, k + s, pct, extra)
    r.append("per file:")
    r += [line(f, per_file[f]) for f in sorted(per_file)]
    r.append("per area (equivalent and stillborn mutants excluded from the score):")
    tot = {}
    for a in AREAS:
        if a in per_area:
            r.append(line(a, per_area[a]))
            for v, n in per_area[a].items():
                tot[v] = tot.get(v, 0) + n
    r.append(line("total", tot))
    for title, verdict in (("survivors", "survived"), ("stillborn (do not compile; not counted)", "stillborn"),
                           ("stale (line no longer in the file)", "stale")):
        ms = [m for m in todo if results.get(m["id"], ("",))[0] == verdict]
        if ms:
            r.append("%s:" % title)
            r += ["  %-5s %s:%s %-5s%s `%s` -> `%s`   in: %s%s" % (m["id"], m["file"], m["line"], m["op"],
                                                                 " san" if san_of(m) else "", m["orig"],
                                                                 m["repl"], m["site"][:90],
                                                               ("  [" + results[m["id"]][1] + "]") if verdict == "stillborn" else "")
                  for m in ms]
    if args.fresh and any(results.get(m["id"], ("",))[0] == "survived" for m in todo):
        r.append("(a survivor with no observable difference: copy its line from build/mutate/fresh-%d.txt into "
                 "tools/mutate/equivalents.txt, status `equivalent: why`; later fresh runs leave it out)" % args.gen_seed)
    san = [m for m in todo if m["status"].startswith("asan")]
    if san:
        r.append("run in the SANITIZE=1 build (what make test SANITIZE=1 in CI would see):")
        r += ["  %-5s %-9s %s:%s `%s` -> `%s`: %s" % (m["id"], results.get(m["id"], ("not run",))[0], m["file"],
                                                   m["line"], m["orig"], m["repl"], m["status"]) for m in san]
    if equiv:
        r.append("equivalent (not run, not counted):")
        r += ["  %-5s %s:%s `%s` -> `%s`: %s" % (m["id"], m["file"], m["line"], m["orig"], m["repl"], m["status"])
              for m in equiv]
    return "\n".join(r) + "\n"


LOG_LINE = re.compile(r"^([A-Z]\d{3})\s+(killed|survived|stillborn|stale)\s+([\d.]+) s\s+\S+ \S+ `.*?` -> `.*?`\s*(.*)$")


def cmd_report(args):
    """The report of a run (or of the part of one that finished) from its log: several logs may be
    given, a later verdict for a mutant replacing an earlier one (a rerun of the survivors)."""
    mutants = read_list(args.list)
    results, secs = {}, 0.0
    for path in args.logs:
        for line in open(path):
            m = LOG_LINE.match(line.rstrip("\n"))
            if m:
                results[m.group(1)] = (m.group(2), m.group(4), float(m.group(3)))
            w = re.match(r"mutation run: .*?, (\d+) s wall", line)
            if w:
                secs += float(w.group(1))
    equiv = [m for m in mutants if m["status"].startswith("equivalent")]
    todo = [m for m in mutants if not m["status"].startswith("equivalent") and m["id"] in results]
    args.sample, args.jobs, args.fresh = 0, 2, False
    sys.stdout.write(report(todo, equiv, results, secs, args))
    missing = [m["id"] for m in mutants if not m["status"].startswith("equivalent") and m["id"] not in results]
    if missing:
        sys.stdout.write("not in the logs (not run): %d: %s\n" % (len(missing), " ".join(missing)))
    return 0


def unassigned_sources():
    """Sources under src/ (but src/cuda/) that no area lists: generate would never draw from them."""
    listed = {f for fs in AREA_FILES.values() for f in fs}
    out = []
    for dp, _, fs in os.walk(os.path.join(ROOT, "src")):
        for f in fs:
            rel = os.path.relpath(os.path.join(dp, f), ROOT)
            if f.endswith(".c") and not rel.startswith("src/cuda/") and rel not in listed:
                out.append(rel)
    return sorted(out)


def cmd_check(args):
    bad = 0
    for f in unassigned_sources():
        log("no area: %s (add it to AREA_FILES in tools/mutate/mutate.py)" % f)
        bad += 1
    for f in sorted({f for fs in AREA_FILES.values() for f in fs}):
        if not os.path.exists(os.path.join(ROOT, f)):
            log("gone: %s is in AREA_FILES but not in the tree" % f)
            bad += 1
    for m in read_list(args.list):
        text = open(os.path.join(ROOT, m["file"])).read()
        mt = mutate_text(m, text)
        if mt is None or mt == text:
            log("stale: %s %s:%s `%s`" % (m["id"], m["file"], m["line"], m["site"][:80]))
            bad += 1
    log("mutate check: %d stale (or unassigned)" % bad)
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="write a new candidate list to stdout")
    g.add_argument("--seed", type=int, default=None, help="the generator's seed (default: a fresh one, in the header)")
    g.add_argument("--per-area", type=int, default=50)
    r = sub.add_parser("run", help="run the mutants")
    r.add_argument("--fresh", action="store_true",
                   help="generate a new list (--gen-seed, default a fresh seed) into build/mutate/fresh-G.txt and "
                        "run a sample of it (--sample, default 80) instead of the committed list")
    r.add_argument("--gen-seed", type=int, default=None, help="--fresh: the generator's seed")
    r.add_argument("--per-area", type=int, default=50, help="--fresh: about this many mutants generated per area")
    r.add_argument("--list", default=LIST, help="the list to run (default: the committed tools/mutate/mutants.txt)")
    r.add_argument("--equivalents", default=EQUIVALENTS,
                   help="mutants known equivalent (list format; matched by file, operator, line text, original and "
                        "replacement, `*` for any replacement); default tools/mutate/equivalents.txt")
    r.add_argument("--sample", type=int, default=None,
                   help="run N mutants, N/4 per area, picked by --seed (default: 80 with --fresh, else all)")
    r.add_argument("--seed", type=int, default=None, help="the sample's seed (default: a fresh one, printed)")
    r.add_argument("--jobs", type=int, default=2)
    r.add_argument("--area", default="")
    r.add_argument("--ids", default="")
    r.add_argument("--source", default=ROOT, help="the tree to copy (default: this one)")
    r.add_argument("--no-baseline", action="store_true",
                   help="skip the run of the plans on the unmutated tree; limits of 150 s CPU, 300 s wall (600 s, "
                        "1200 s in the SANITIZE=1 build)")
    r.add_argument("--skip-tests", default="", help="leave these test binaries out of every plan")
    r.add_argument("--plain", action="store_true",
                   help="every mutant in the plain build (but those with status asan), as before issue 24")
    r.add_argument("--no-poison", action="store_true",
                   help="the SANITIZE=1 build without ASan's fill of fresh heap blocks (0xff bytes)")
    r.add_argument("--report", default=os.path.join(ROOT, "build", "mutate", "report.txt"))
    c = sub.add_parser("check", help="every mutant still finds its line")
    c.add_argument("--list", default=LIST)
    rp = sub.add_parser("report", help="a report from run logs (a later log's verdict wins)")
    rp.add_argument("--list", default=LIST, help="the list the logs ran (a fresh run's build/mutate/fresh-G.txt)")
    rp.add_argument("logs", nargs="+")
    args = ap.parse_args()
    if args.cmd == "generate":
        seed = args.seed if args.seed is not None else new_seed()
        write_list(generate(seed, args.per_area), sys.stdout, seed)
        return 0
    return {"run": cmd_run, "check": cmd_check, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
