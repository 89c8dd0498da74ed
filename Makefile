SHELL := /bin/bash
# latup — build liblatup.a, the CLI build/latup, and the cmocka test suite.
#   make            library + CLI
#   make test       build and run every test (exits non-zero on any failure)
#   make bench      build/bench_lua and build/bench_vae, the timing benchmarks
#   make demo       install missing packages, build, upscale + decode the committed demo latent
#   make fuzz       libFuzzer targets in fuzz/ (clang), FUZZ_TIME seconds each
#   make SANITIZE=1 ASan + UBSan build (into build-san/)
#   make clean

CC      ?= cc
BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null)
BLAS_LIBS   := $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)

CFLAGS  ?= -O2 -march=native
CFLAGS  += -std=c11 -Wall -Wextra -fopenmp -Iinclude -Isrc $(BLAS_CFLAGS)
LDLIBS  += $(BLAS_LIBS) -lz -lm -fopenmp

ifeq ($(SANITIZE),1)
BUILD   ?= build-san
CFLAGS  += -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
else
BUILD   ?= build
endif

LIB_SRC   := $(wildcard src/*.c src/ops/*.c src/model/*.c src/io/*.c)
CLI_SRC   := $(wildcard src/cli/*.c)
TEST_SRC  := $(wildcard tests/test_*.c)
LIB_OBJ   := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
CLI_OBJ   := $(CLI_SRC:src/%.c=$(BUILD)/obj/%.o)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HEADERS   := $(wildcard include/*.h src/*.h src/*/*.h tests/*.h)

.PHONY: all test bench demo deps fuzz clean check-deps
all: check-deps $(BUILD)/liblatup.a $(BUILD)/latup

check-deps:
	@echo "latup: CC=$(CC); OpenMP: -fopenmp; BLAS: $(if $(BLAS_CFLAGS),$(BLAS_LIBS) ($(BLAS_CFLAGS)),-lopenblas (pkg-config found no openblas))"
	@printf '#include <cblas.h>\n#include <omp.h>\n#include <zlib.h>\nint main(void){return 0;}\n' | \
	  $(CC) -x c - -fsyntax-only -fopenmp $(BLAS_CFLAGS) 2>/dev/null || \
	  { echo "latup: missing headers (cblas.h, omp.h or zlib.h): run .ci/run or apt-get install libopenblas-openmp-dev zlib1g-dev libcmocka-dev" >&2; exit 1; }

$(BUILD)/obj/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/liblatup.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

$(BUILD)/latup: $(CLI_OBJ) $(BUILD)/liblatup.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/liblatup.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/liblatup.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -DLATUP_BUILD_DIR=\"$(BUILD)\" $(LDFLAGS) -o $@ $< $(BUILD)/liblatup.a $(LDLIBS) -lcmocka

# Each test binary runs from the repository root (golden data paths are relative to it).
test: all $(TEST_BIN)
	@pass=0; fail=0; for t in $(TEST_BIN); do \
	  echo "== $$t"; \
	  if OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} ./$$t; then pass=$$((pass+1)); else fail=$$((fail+1)); echo "FAILED: $$t"; fi; \
	done; \
	echo "tests: $$pass passed, $$fail failed"; test $$fail -eq 0

# The README's main job: install what is missing, build, then upscale the committed demo latent
# with the small LUA and decode it with the small FLUX-style VAE in one `latup run`.
DEMO_OUT := $(BUILD)/demo/demo.png
demo: deps
	$(MAKE) all
	@mkdir -p $(BUILD)/demo
	./$(BUILD)/latup run --model ref_data/small/model.safetensors.gz --scale 2 \
	  --vae ref_data/vae/flux_small.ldm.safetensors.gz --in ref_data/demo/latent.npy \
	  --out $(DEMO_OUT) --save-latent $(BUILD)/demo/upscaled_x2.npy --verbose
	@echo "demo: wrote $(DEMO_OUT) and $(BUILD)/demo/upscaled_x2.npy"
	@echo "demo: the committed models are small random-weight stand-ins (README: real models)"

deps:
	@tools/install_deps.sh

# Benchmarks (not tests): build/bench_lua --help
bench: $(BUILD)/bench_lua $(BUILD)/bench_vae
$(BUILD)/bench_%: tools/bench_%.c $(BUILD)/liblatup.a $(HEADERS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/liblatup.a $(LDLIBS)

# libFuzzer targets (clang): fuzz/fuzz_*.c. The readers' targets link the file readers only (no
# BLAS/OpenMP); fuzz_models reaches config inference and binding, so it links the whole library.
# make fuzz FUZZ_TIME=60 runs each target for FUZZ_TIME seconds on a copy of its committed seed
# corpus fuzz/corpus/<target>/ (with fuzz/<target>.dict when there is one); crashes are written
# to build-fuzz/ and fail the run.
FUZZ_CC    ?= clang
FUZZ_TIME  ?= 60
FUZZ_FLAGS := -std=c11 -g -O1 -Iinclude -Isrc -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_LIB   := src/common.c $(wildcard src/io/*.c)
FUZZ_SRC   := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN   := $(FUZZ_SRC:fuzz/%.c=build-fuzz/%)

build-fuzz/%: fuzz/%.c $(FUZZ_LIB) $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_LIB) -lz -lm

build-fuzz/fuzz_models: fuzz/fuzz_models.c $(LIB_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fopenmp -Wno-pass-failed $(BLAS_CFLAGS) -o $@ $< $(LIB_SRC) $(BLAS_LIBS) -lz -lm

# test_corpus replays the structure-aware targets' corpora through the targets themselves.
$(BUILD)/tests/test_corpus: $(FUZZ_SRC)

fuzz: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do \
	  t=$$(basename $$f); mkdir -p build-fuzz/work/$$t; \
	  dict=$$( [ -f fuzz/$$t.dict ] && echo -dict=fuzz/$$t.dict ); \
	  echo "== $$t ($(FUZZ_TIME) s)"; \
	  OMP_NUM_THREADS=1 ./$$f -max_total_time=$(FUZZ_TIME) -print_final_stats=1 -artifact_prefix=build-fuzz/$$t- $$dict \
	    build-fuzz/work/$$t fuzz/corpus/$$t 2>&1 | grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done" ; \
	  test $${PIPESTATUS[0]} -eq 0 || { echo "fuzz: $$t found a crash (build-fuzz/$$t-*)"; exit 1; }; \
	done

clean:
	rm -rf build build-san build-fuzz
