SHELL := /bin/bash
# latup — build liblatup (static and shared), the CLI build/latup, and the cmocka test suite.
#   make            liblatup.a, liblatup.so and the CLI
#   make test       build and run every test (exits non-zero on any failure)
#   make install    PREFIX=/usr/local DESTDIR=: bin/latup, lib/liblatup.{so,a}, include/latup.h,
#                   lib/pkgconfig/latup.pc, share/man/man1/latup.1;  make uninstall
#   make check-install  install into a scratch prefix, build examples/c against it with
#                   pkg-config, run it, uninstall
#   make test-python    the Python package's tests (python/tests, Debian's python3-numpy); make
#                   test runs them when numpy is there (REQUIRE_PYTHON=1: and fails when not)
#   make bench      build/bench_lua, bench_vae, bench_gemm: the timing benchmarks
#   make bench-peers latup next to ONNX Runtime and PyTorch (tools/bench/bench_peers.sh, PyPI venv)
#   make bench-paper the paper's speed claim at the released widths: LUA path vs pixel path (tools/bench/bench_paper.c)
#   make demo       install missing packages, build, run latup eval (the paper's comparison) on the demo photo
#   make fuzz       libFuzzer targets in fuzz/ (clang), FUZZ_CPU CPU-seconds each
#   make mutate     mutation testing (tools/mutate/mutate.py): a fresh list of planted bugs from a new
#                   generator seed (SEED=G to repeat one), N=80 of them run (N/4 per area, picked by
#                   SAMPLE_SEED=S, new unless given); the report's head prints both seeds and the command
#                   that repeats the run. make mutate LIST=1: the committed regression set
#                   (tools/mutate/mutants.txt, about 200); LIST=1 SAMPLE=1 (or mutate-sample): 40 of it
#                   (SAMPLE_SEED=1). Equivalents: tools/mutate/equivalents.txt. Readers, tiling and arena
#                   mutants run in the SANITIZE=1 build. A tool, not part of CI or make test.
#   make SANITIZE=1 ASan + UBSan build (into build-san/)
#   make CUDA=1     also the CUDA path (src/cuda/, nvcc + cuBLAS), into build-cuda/ (docs/cuda.md)
#   make clean

CC      ?= cc
BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null)
BLAS_LIBS   := $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)

# The one version number lives in include/latup.h.
VERSION_PART = $(shell sed -n 's/^\#define LATUP_VERSION_$(1) \([0-9]*\)$$/\1/p' include/latup.h)
VMAJOR  := $(call VERSION_PART,MAJOR)
VERSION := $(VMAJOR).$(call VERSION_PART,MINOR).$(call VERSION_PART,PATCH)

CFLAGS  ?= -O2 -march=native
CFLAGS  += -std=c11 -Wall -Wextra -fopenmp -Iinclude $(BLAS_CFLAGS)
# A function used without its declaration is an error, not a warning: a cblas.h without
# OpenBLAS's extensions (the reference BLAS's, from libblas-dev) made openblas_get_corename()
# an int, and the pointer it returns was truncated (latup --version --verbose crashed).
CFLAGS  += -Werror=implicit-function-declaration -Werror=int-conversion
LDLIBS  += $(BLAS_LIBS) -lz -lm -fopenmp
# The library's objects serve both liblatup.a and liblatup.so: position-independent, and hidden
# unless latup.h marks them LATUP_API. The CLI sees include/ only: it uses the public API.
LIB_CFLAGS = $(CFLAGS) -Isrc -fPIC -fvisibility=hidden

ifeq ($(CUDA),1)
BUILD_KIND := -cuda
endif
ifeq ($(SANITIZE),1)
BUILD   ?= build$(BUILD_KIND)-san
CFLAGS  += -g -DLATUP_SANITIZE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
else
BUILD   ?= build$(BUILD_KIND)
endif

LIB_SRC   := $(wildcard src/*.c src/ops/*.c src/model/*.c src/io/*.c src/api/*.c)
CLI_SRC   := $(wildcard src/cli/*.c)
TEST_SRC  := $(wildcard tests/test_*.c)
ifeq ($(SANITIZE),1)
# test_memory measures the process's peak RSS against --max-memory: ASan's shadow memory is not
# latup's, so it runs in the plain build only (where make test runs it)
TEST_SRC  := $(filter-out tests/test_memory.c,$(TEST_SRC))
endif
LIB_OBJ   := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
CLI_OBJ   := $(CLI_SRC:src/cli/%.c=$(BUILD)/cli/%.o)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HEADERS   := $(wildcard include/*.h src/*.h src/*/*.h src/*/*.cuh tests/support/*.h)
SONAME    := liblatup.so.$(VMAJOR)
SHLIB     := $(BUILD)/liblatup.so.$(VERSION)

# ---- CUDA=1: the CUDA path as an optional translation unit (docs/cuda.md) -----------------------
# src/cuda/*.cu through nvcc (sm_80 and sm_90 code plus PTX for later GPUs), src/cuda/*.c through
# $(CC) against the CUDA headers, cuBLAS and the CUDA runtime linked. Without CUDA=1 none of it
# is compiled: src/model/gpu_none.c answers every GPU request with LATUP_E_DEVICE, and the GPU
# test tests/test_cuda.c is not built (the host harness tests/test_cuda_host.c always is).
GPU_TEST_BIN :=
ifeq ($(CUDA),1)
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
ifeq ($(shell command -v $(NVCC) 2>/dev/null),)
$(error CUDA=1: no nvcc at '$(NVCC)': install the CUDA toolkit, or set CUDA_HOME (or NVCC); docs/cuda.md)
endif
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
# -fmad=false: no FMA contraction in our kernels, so they round exactly as the same bodies do in
# the host harness and as the CPU kernels do (cuBLAS is unaffected)
NVCCFLAGS ?= -O2
NVCCFLAGS += -std=c++17 -fmad=false $(CUDA_ARCH) -Iinclude -Isrc -Xcompiler -Wall,-Wextra,-fPIC,-fvisibility=hidden
CFLAGS    += -I$(CUDA_HOME)/include -DLATUP_CUDA
BASE_LDLIBS := $(LDLIBS)
LDLIBS    += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++
LIB_SRC   := $(filter-out src/model/gpu_none.c,$(LIB_SRC)) $(wildcard src/cuda/*.c)
CU_SRC    := $(wildcard src/cuda/*.cu)
LIB_OBJ   := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o) $(CU_SRC:src/%.cu=$(BUILD)/obj/%.cu.o)
GPU_TEST_BIN := $(BUILD)/tests/test_cuda
# test_cuda_emu: the same GPU test on an emulated device (tests/support/cuda_emu.c in place of kernels.cu,
# libcudart and libcublas): the CUDA path's host code checked on any machine
TEST_BIN  += $(BUILD)/tests/test_cuda_emu
EMU_OBJ   := $(filter-out %.cu.o,$(LIB_OBJ))
else
TEST_SRC  := $(filter-out tests/test_cuda.c,$(TEST_SRC))
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
endif

.PHONY: all test bench bench-peers bench-paper demo deps fuzz clean check-deps install uninstall check-install check-exports check-includes test-python examples
all: check-deps $(BUILD)/liblatup.a $(BUILD)/liblatup.so $(BUILD)/latup

check-deps:
	@echo "latup $(VERSION): CC=$(CC); OpenMP: -fopenmp; BLAS: $(if $(BLAS_CFLAGS),$(BLAS_LIBS) ($(BLAS_CFLAGS)),-lopenblas (pkg-config found no openblas))"
	@printf '#include <cblas.h>\n#include <omp.h>\n#include <zlib.h>\nint main(void){return 0;}\n' | \
	  $(CC) -x c - -fsyntax-only -fopenmp $(BLAS_CFLAGS) 2>/dev/null || \
	  { echo "latup: missing headers (cblas.h, omp.h or zlib.h): run .ci/run or apt-get install libopenblas-openmp-dev zlib1g-dev libcmocka-dev" >&2; exit 1; }

$(BUILD)/obj/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/cli/%.o: src/cli/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.cu.o: src/%.cu $(HEADERS)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(BUILD)/liblatup.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(SHLIB): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/liblatup.so: $(SHLIB)
	ln -sf $(notdir $(SHLIB)) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $@

$(BUILD)/latup: $(CLI_OBJ) $(BUILD)/liblatup.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/liblatup.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/liblatup.a $(HEADERS) $(CLI_SRC) fuzz/fuzz_cli_opts.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -Itests -Itests/support -DLATUP_BUILD_DIR=\"$(BUILD)\" $(LDFLAGS) -o $@ $< $(BUILD)/liblatup.a $(LDLIBS) -lcmocka

# test_api_contract's cases come from the header itself (tools/ci/gen_api_cases.awk), so every
# function latup.h declares is called with hostile arguments.
$(BUILD)/gen/api_cases.h: include/latup.h tools/ci/gen_api_cases.awk
	@mkdir -p $(dir $@)
	awk -f tools/ci/gen_api_cases.awk include/latup.h > $@.tmp && mv $@.tmp $@
$(BUILD)/tests/test_api_contract: tests/test_api_contract.c $(BUILD)/gen/api_cases.h $(BUILD)/liblatup.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -Itests -Itests/support -I$(BUILD)/gen $(LDFLAGS) -o $@ $< $(BUILD)/liblatup.a $(LDLIBS) -lcmocka

# The LD_PRELOAD shim test_cli_contract and test_batches use to kill latup mid-write and fail fsync/rename; plain
# (no sanitizer), so it can be preloaded into either build.
$(BUILD)/tests/fault_inject.so: tests/support/fault_inject.c
	@mkdir -p $(dir $@)
	$(CC) -O1 -shared -fPIC -o $@ $< -ldl
$(BUILD)/tests/test_cli_contract: $(BUILD)/tests/fault_inject.so
$(BUILD)/tests/test_batches: $(BUILD)/tests/fault_inject.so

ifeq ($(CUDA),1)
$(BUILD)/tests/test_cuda_emu: tests/test_cuda.c tests/support/cuda_emu.c $(EMU_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -Itests -Itests/support -DLATUP_CUDA_EMU $(LDFLAGS) -o $@ tests/test_cuda.c tests/support/cuda_emu.c $(EMU_OBJ) \
	  $(BASE_LDLIBS) -lcmocka
endif

# Each test binary runs from the repository root (golden data paths are relative to it).
# The GPU test (CUDA=1 only) exits 77 when there is no CUDA device: reported as NOT RUN, and the
# suite fails, since a test that did not run is not a pass. Then, in the plain build, the exported
# symbols, the README's commands, and the Python package (when numpy is there to run it).
# The numeric tests run again under every other OpenBLAS kernel set this CPU can run
# (tests/support/kernel_sets.sh; docs/testing.md, "Kernel sets"): plain build only.
KERNEL_SET_TESTS := $(addprefix $(BUILD)/tests/,test_determinism test_kernels test_lua_golden test_vae_golden test_vae_encoder \
                      test_trained_golden test_sweep)
$(BUILD)/tests/blas_kernels: tests/support/blas_kernels.c $(BUILD)/liblatup.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< $(BUILD)/liblatup.a $(LDLIBS)

test: all $(TEST_BIN) $(BUILD)/latup-shared $(BUILD)/tests/blas_kernels
	@pass=0; fail=0; notrun=0; for t in $(TEST_BIN); do \
	  echo "== $$t"; \
	  OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} ./$$t; rc=$$?; \
	  if [ $$rc -eq 0 ]; then pass=$$((pass+1)); \
	  elif [ $$rc -eq 77 ] && [ "$$t" = "$(GPU_TEST_BIN)" ]; then notrun=$$((notrun+1)); \
	    echo "NOT RUN: $$t (no CUDA device): not a pass"; \
	  else fail=$$((fail+1)); echo "FAILED: $$t"; fi; \
	done; \
	if [ "$(SANITIZE)" != 1 ]; then \
	  echo "== kernel sets"; if tests/support/kernel_sets.sh $(BUILD)/tests/blas_kernels $(KERNEL_SET_TESTS); then pass=$$((pass+1)); \
	    else fail=$$((fail+1)); echo "FAILED: kernel sets"; fi; \
	  echo "== check-exports"; if $(MAKE) -s check-exports; then pass=$$((pass+1)); else fail=$$((fail+1)); echo "FAILED: check-exports"; fi; \
	  echo "== check-readme"; if tools/ci/check_readme.sh; then pass=$$((pass+1)); else fail=$$((fail+1)); echo "FAILED: check-readme"; fi; \
	  echo "== check-includes"; if tools/ci/check_includes.sh; then pass=$$((pass+1)); else fail=$$((fail+1)); echo "FAILED: check-includes"; fi; \
	fi; \
	if $(PYTHON) -c 'import numpy' 2>/dev/null; then \
	  echo "== test-python"; if $(MAKE) -s test-python; then pass=$$((pass+1)); else fail=$$((fail+1)); echo "FAILED: test-python"; fi; \
	elif [ "$(REQUIRE_PYTHON)" = 1 ]; then echo "FAILED: test-python: $(PYTHON) has no numpy"; fail=$$((fail+1)); \
	else echo "== test-python NOT RUN: $(PYTHON) has no numpy (apt-get install python3-numpy); not counted"; fi; \
	if [ $$notrun -gt 0 ]; then echo "tests: $$pass passed, $$fail failed, $$notrun not run"; \
	else echo "tests: $$pass passed, $$fail failed"; fi; \
	test $$fail -eq 0 && test $$notrun -eq 0

# The CLI linked against liblatup.so instead of the static library: it links only if the CLI uses
# nothing but the exported API (what `make install` promises a program built on latup.h).
$(BUILD)/latup-shared: $(CLI_OBJ) $(BUILD)/liblatup.so
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) -L$(BUILD) -llatup -Wl,-rpath,'$$ORIGIN' $(LDLIBS)

# liblatup.so exports exactly the functions latup.h declares: all of them, nothing else.
check-exports: $(BUILD)/liblatup.so
	@nm -D --defined-only $(BUILD)/liblatup.so | awk '{print $$3}' | sort > $(BUILD)/exports.txt
	@sed -n 's/^LATUP_API[^(]*[ *]\(latup_[a-z0-9_]*\)(.*/\1/p' include/latup.h | sort > $(BUILD)/declared.txt
	@if grep -v '^latup_' $(BUILD)/exports.txt; then echo "check-exports: liblatup.so exports the symbols above (not latup_*)"; exit 1; fi
	@if ! diff -u $(BUILD)/declared.txt $(BUILD)/exports.txt; then echo "check-exports: latup.h (-) and liblatup.so (+) disagree"; exit 1; fi
	@echo "check-exports: liblatup.so ($(SONAME)) exports the $$(wc -l < $(BUILD)/exports.txt) functions latup.h declares, nothing else"

# No circles between src/'s files: through a header and its .c file, or through calls
# (tools/ci/check_includes.sh; issue 18).
check-includes:
	@tools/ci/check_includes.sh

# ---- install ---------------------------------------------------------------------------------
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man

# A LIBDIR the dynamic linker does not search (PREFIX=$HOME/.local) gets -Wl,-rpath in latup.pc's
# Libs, so a program built with `pkg-config --libs latup` finds liblatup.so.0 without
# LD_LIBRARY_PATH; the system's folders get none (the loader and ldconfig find them there, and
# distributions refuse rpaths into them). PC_RPATH= turns it off. The installed bin/latup is linked
# against liblatup.a and needs no liblatup.so at all.
MULTIARCH      := $(shell $(CC) -print-multiarch 2>/dev/null)
SYSTEM_LIBDIRS := /lib /lib64 /usr/lib /usr/lib64 /usr/local/lib $(if $(MULTIARCH),/lib/$(MULTIARCH) /usr/lib/$(MULTIARCH))
PC_RPATH       ?= $(if $(filter $(SYSTEM_LIBDIRS),$(patsubst %/,%,$(LIBDIR))),, -Wl$(comma)-rpath$(comma)$${libdir})
comma := ,

# latup.pc is filled in at every install: it names the prefix of that install.
install: all
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(VERSION)|' \
	    -e 's|@RPATH@|$(PC_RPATH)|; s|@LIBS_PRIVATE@|$(BLAS_LIBS) -lz -lm -fopenmp|' latup.pc.in > $(BUILD)/latup.pc
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(BUILD)/latup $(DESTDIR)$(BINDIR)/latup
	install -m 644 $(BUILD)/liblatup.a $(DESTDIR)$(LIBDIR)/liblatup.a
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/$(notdir $(SHLIB))
	ln -sf $(notdir $(SHLIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/liblatup.so
	install -m 644 include/latup.h $(DESTDIR)$(INCLUDEDIR)/latup.h
	install -m 644 $(BUILD)/latup.pc $(DESTDIR)$(LIBDIR)/pkgconfig/latup.pc
	install -m 644 docs/latup.1 $(DESTDIR)$(MANDIR)/man1/latup.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/latup $(DESTDIR)$(LIBDIR)/liblatup.a $(DESTDIR)$(LIBDIR)/liblatup.so \
	  $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/$(notdir $(SHLIB)) $(DESTDIR)$(INCLUDEDIR)/latup.h \
	  $(DESTDIR)$(LIBDIR)/pkgconfig/latup.pc $(DESTDIR)$(MANDIR)/man1/latup.1

# What a user does after `make install` into a prefix of their own (the README's PREFIX=$HOME/.local):
# set PKG_CONFIG_PATH, build a program with pkg-config and run it with no LD_LIBRARY_PATH (latup.pc's
# rpath finds liblatup.so.0), run bin/latup (which needs no liblatup.so); then `make uninstall` must
# leave nothing behind. A system prefix (staged with DESTDIR) must get no rpath.
CHECK_PREFIX ?= $(CURDIR)/$(BUILD)/check-install
check-install: all
	rm -rf $(CHECK_PREFIX)
	$(MAKE) -s install PREFIX=$(CHECK_PREFIX)
	PKG_CONFIG_PATH=$(CHECK_PREFIX)/lib/pkgconfig; export PKG_CONFIG_PATH; unset LD_LIBRARY_PATH; \
	  $(CC) -o $(CHECK_PREFIX)/upscale_example examples/c/upscale_example.c $$(pkg-config --cflags --libs latup) && \
	  $(CHECK_PREFIX)/upscale_example ref_data/small/model.safetensors.gz && \
	  { ! ldd $(CHECK_PREFIX)/bin/latup | grep -q liblatup || { echo "check-install: bin/latup needs liblatup.so"; exit 1; }; } && \
	  $(CHECK_PREFIX)/bin/latup --version && \
	  grep -q "^\.TH LATUP 1" $(CHECK_PREFIX)/share/man/man1/latup.1
	$(MAKE) -s uninstall PREFIX=$(CHECK_PREFIX)
	$(MAKE) -s install PREFIX=/usr DESTDIR=$(CHECK_PREFIX)/staged
	@if grep -n rpath $(CHECK_PREFIX)/staged/usr/lib/pkgconfig/latup.pc; then \
	  echo "check-install: PREFIX=/usr got an rpath in latup.pc"; exit 1; fi
	$(MAKE) -s uninstall PREFIX=/usr DESTDIR=$(CHECK_PREFIX)/staged
	rm -f $(CHECK_PREFIX)/upscale_example
	@left=$$(find $(CHECK_PREFIX) -type f -o -type l); \
	  if [ -n "$$left" ]; then echo "check-install: uninstall left $$left"; exit 1; fi
	rm -rf $(CHECK_PREFIX)
	@echo "check-install: installed, built examples/c against it with pkg-config, ran it, uninstalled"

# ---- Python --------------------------------------------------------------------------------------
# Debian's interpreter (python3-numpy), not a pyenv one; the package loads $(BUILD)/liblatup.so.
# SANITIZE=1: the sanitized liblatup.so, in an interpreter that is not: the ASan and UBSan runtimes
# are preloaded (they must come first), leak checks are off (the interpreter keeps what it
# allocates until exit), and any report ends the run with an error (halt_on_error; the library is
# built with -fno-sanitize-recover), so it fails the tests. Spawned programs (build-san/latup, the
# compiler of the ABI test) inherit the same environment.
PYTHON ?= /usr/bin/python3
ifeq ($(SANITIZE),1)
SAN_RUNTIMES = $(shell $(CC) -print-file-name=libasan.so) $(shell $(CC) -print-file-name=libubsan.so)
PY_SAN_ENV = LD_PRELOAD="$(SAN_RUNTIMES)" ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0:halt_on_error=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
endif
test-python: $(BUILD)/liblatup.so $(BUILD)/latup
ifeq ($(SANITIZE),1)
	@for f in $(SAN_RUNTIMES); do [ -f "$$f" ] || { echo "test-python: $(CC) has no $$f to preload (SANITIZE=1 needs gcc's libasan and libubsan)" >&2; exit 1; }; done
endif
	$(PY_SAN_ENV) LATUP_LIBRARY=$(CURDIR)/$(BUILD)/liblatup.so LATUP_BIN=$(CURDIR)/$(BUILD)/latup CC=$(CC) \
	  PYTHONPATH=$(CURDIR)/python $(PYTHON) -m unittest discover -s python/tests -t python -v

# The README's main job: install what is missing, build, then run the paper's comparison on the
# committed photo with the trained models (ref_data/trained/): `latup eval` encodes its half-size
# version and runs the paths (vae ceiling, bicubic, LUA, pixel SwinIR), prints the table and saves
# the images; build/latup_demo (examples/demo/demo.c) composes the labelled comparison from them.
DEMO_DIR := $(BUILD)/demo
TRAINED  := ref_data/trained
demo: deps
	$(MAKE) all $(BUILD)/latup_demo
	@mkdir -p $(DEMO_DIR)
	./$(BUILD)/latup eval --vae $(TRAINED)/vae.ldm.safetensors.gz --model $(TRAINED)/lua_x2x4.safetensors.gz \
	  --pixel-model $(TRAINED)/swinir_x2.safetensors.gz --save $(DEMO_DIR) --json $(DEMO_DIR)/eval.json \
	  $(TRAINED)/demo_gt.png
	./$(BUILD)/latup_demo --gt $(TRAINED)/demo_gt.png --out $(DEMO_DIR)
	@echo "demo: wrote $(DEMO_DIR)/demo_gt_lua.png (LUA x2 + decode), the other paths' images and $(DEMO_DIR)/compare.png"
	@echo "demo: small models trained here on CPU (docs/results.md), not the released LUA/FLUX weights"

$(BUILD)/latup_demo: examples/demo/demo.c src/cli/image_metrics.h $(BUILD)/liblatup.a $(HEADERS)
	$(CC) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< $(BUILD)/liblatup.a $(LDLIBS)

deps:
	@tools/ci/install_deps.sh

# Benchmarks (not tests): build/bench_lua --help
bench: $(BUILD)/bench_lua $(BUILD)/bench_vae $(BUILD)/bench_gemm $(BUILD)/bench_paper
ifeq ($(CUDA),1)
bench: $(BUILD)/bench_cuda
endif
# latup next to ONNX Runtime and PyTorch, in one run (docs/performance.md); not part of CI.
# PEERS_ARGS="--kernels default,Haswell --quick" passes options (tools/bench/bench_peers.sh)
bench-peers:
	tools/bench/bench_peers.sh $(PEERS_ARGS)
# The paper's speed claim at the released widths (docs/results.md): LUA x2 + decode 128x128 against
# decode 64x64 + pixel SwinIR x2 on the 512 px image, interleaved, medians of 5; about 20 minutes on
# 2 cores. PAPER_ARGS="--scale 4" or "--runs 3" passes options (tools/bench/bench_paper.c).
bench-paper: $(BUILD)/bench_paper
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-$$(nproc)} ./$(BUILD)/bench_paper $(PAPER_ARGS)

$(BUILD)/bench_%: tools/bench/bench_%.c tools/bench/bench_serve.h tools/bench/bench_system.h $(BUILD)/liblatup.a $(HEADERS)
	$(CC) $(CFLAGS) -Isrc -Itests/support $(LDFLAGS) -o $@ $< $(BUILD)/liblatup.a $(LDLIBS)

# libFuzzer targets (clang): fuzz/fuzz_*.c. The readers' targets link the file readers only (no
# BLAS/OpenMP); fuzz_models reaches config inference and binding, so it links the whole library.
# make fuzz FUZZ_CPU=60 runs each target until it has used FUZZ_CPU seconds of CPU time (not wall
# time: tools/fuzz/campaign.sh), from its committed seed corpus fuzz/corpus/<target>/ (with
# fuzz/<target>.dict when there is one), new units in build-fuzz/work/<target>; a target that stops
# by itself (a crash, leak, timeout, out-of-memory) fails the run, its input in build-fuzz/.
# FUZZ_MERGE=1 merges what each run found into the committed corpus (-merge=1).
FUZZ_CC    ?= clang
FUZZ_CPU   ?= 60
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
	  t=$$(basename $$f); echo "== $$t ($(FUZZ_CPU) CPU-seconds)"; \
	  tools/fuzz/campaign.sh --cpu $(FUZZ_CPU) $(if $(filter 1,$(FUZZ_MERGE)),--merge) $$t || exit 1; \
	done

# Mutation testing (docs/testing.md): each mutant planted in a copy of the tree under /tmp/latup-mutate,
# built, and run against its area's tests; report in build/mutate/report.txt. By default a fresh list
# (build/mutate/fresh-<SEED>.txt) and a sample of N; LIST=1: the committed tools/mutate/mutants.txt.
.PHONY: mutate mutate-sample
N ?= 80
mutate: all
	nice -n 19 python3 tools/mutate/mutate.py run $(if $(filter 1,$(LIST)),$(if $(filter 1,$(SAMPLE)),--sample 40),--fresh \
	  --sample $(N) $(if $(SEED),--gen-seed $(SEED))) $(if $(SAMPLE_SEED),--seed $(SAMPLE_SEED))
mutate-sample:
	$(MAKE) mutate LIST=1 SAMPLE=1 SAMPLE_SEED=$(or $(SAMPLE_SEED),1)

clean:
	rm -rf build build-san build-fuzz build-cuda build-cuda-san
