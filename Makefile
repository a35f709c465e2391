# ngx_http_llm_module
#
#   make            build build/ngx_http_llm_module.so
#   make run        set up and run the gateway on 127.0.0.1:$(PORT)
#                   (EXAMPLE=keys: another example of conf.examples/)
#   make test       set up and run the whole test suite
#   make test-asan  the suite with the module built under ASan and UBSan
#   make valgrind   the suite with nginx under valgrind memcheck
#   make bench      side-by-side benchmark, written to bench/RESULTS.md
#   make fuzz       libFuzzer harnesses of fuzz/, FUZZ_SECONDS (300) each
#   make prove T=t/010-chat.t   some test files only
#   make deb        the Debian package, in build/deb/ (docs/install.md)
#   make smoke NGINX_SRC=...   nginx built from that source, the smoke test
#
# NGINX_SRC=/path/to/nginx-src builds against another nginx source tree.

NGINX_SRC ?= /usr/share/nginx/src
NGINX     ?= /usr/sbin/nginx
PORT      ?= 8080
EXAMPLE   ?= quickstart
BUILD     ?= build

MODULE    := $(BUILD)/ngx_http_llm_module.so
ASAN_MOD  := $(BUILD)/asan/ngx_http_llm_module.so
SOURCES   := config $(wildcard ngx_http_llm_module/*.c ngx_http_llm_module/*.h) \
             ngx_http_llm_module/ngx_http_llm_page.c
MODDIR    := /usr/lib/nginx/modules

# what the test harness loads into every nginx it starts
TEST_MODULES = $(MODDIR)/ngx_http_echo_module.so \
               $(MODDIR)/ngx_http_js_module.so

TEST_ENV = TEST_NGINX_BINARY=$(NGINX)

.PHONY: all deps run test test-deps prove client-test test-asan valgrind deb \
        nginx-from-source smoke \
        bench fuzz fuzz-short page clean

all: $(MODULE)

# the status page is served from a C string made from its HTML
PAGE := ngx_http_llm_module/ngx_http_llm_page

page: $(PAGE).c

$(PAGE).c: $(PAGE).html scripts/page2c
	scripts/page2c $(PAGE).html > $@.tmp && mv $@.tmp $@

deps:
	@scripts/deps.sh build

$(BUILD)/nginx/objs/Makefile: config $(BUILD)/.deps
	NGINX_BIN=$(NGINX) scripts/build.sh $(NGINX_SRC) $(BUILD)/nginx

$(BUILD)/.deps: scripts/deps.sh
	@scripts/deps.sh build
	@mkdir -p $(BUILD) && touch $@

$(MODULE): $(BUILD)/nginx/objs/Makefile $(SOURCES)
	$(MAKE) -C $(BUILD)/nginx -f objs/Makefile modules
	# a new file, not the old one rewritten: an nginx running the old
	# module (a test in progress) keeps its mapping intact
	cp $(BUILD)/nginx/objs/ngx_http_llm_module.so $@.tmp && mv $@.tmp $@

# --- run -------------------------------------------------------------------

run: $(MODULE)
	@scripts/deps.sh run
	@NGINX_BIN=$(NGINX) scripts/run.sh $(PORT) $(EXAMPLE)

# --- tests -----------------------------------------------------------------

test-deps:
	@scripts/deps.sh test

test: $(MODULE) test-deps
	$(MAKE) prove client-test fuzz-short

prove: $(MODULE)
	$(TEST_ENV) TEST_NGINX_LOAD_MODULES="$(TEST_MODULES) $(CURDIR)/$(MODULE)" \
	    prove $(if $(T),$(T),-r t/)

client-test: $(MODULE)
	@NGINX_BIN=$(NGINX) scripts/client-test.sh $(CURDIR)/$(MODULE)

$(BUILD)/asan/nginx/objs/Makefile: config $(BUILD)/.deps
	NGINX_BIN=$(NGINX) scripts/build.sh $(NGINX_SRC) $(BUILD)/asan/nginx \
	    --with-cc-opt="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	    --with-ld-opt="-fsanitize=address,undefined"

$(ASAN_MOD): $(BUILD)/asan/nginx/objs/Makefile $(SOURCES)
	$(MAKE) -C $(BUILD)/asan/nginx -f objs/Makefile modules
	cp $(BUILD)/asan/nginx/objs/ngx_http_llm_module.so $@.tmp && mv $@.tmp $@

test-asan: $(ASAN_MOD) test-deps
	$(TEST_ENV) TEST_NGINX_LOAD_MODULES="$(TEST_MODULES) $(CURDIR)/$(ASAN_MOD)" \
	    TEST_NGINX_USE_ASAN="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	    prove $(if $(T),$(T),-r t/)

valgrind: $(MODULE) test-deps
	@scripts/deps.sh asan
	$(TEST_ENV) TEST_NGINX_LOAD_MODULES="$(TEST_MODULES) $(CURDIR)/$(MODULE)" \
	    TEST_NGINX_USE_VALGRIND=1 prove $(if $(T),$(T),-r t/)

# --- fuzz ------------------------------------------------------------------

FUZZ_SECONDS ?= 300

fuzz:
	@scripts/deps.sh fuzz
	@scripts/fuzz.sh $(FUZZ_SECONDS)

# the bounded run of make test: the regressions, then the same inputs
# everywhere (a fixed seed and the counts of fuzz/short-runs)
fuzz-short:
	@scripts/deps.sh fuzz
	@scripts/fuzz.sh short

# --- bench -----------------------------------------------------------------

bench: $(MODULE)
	@scripts/deps.sh bench
	@NGINX_BIN=$(NGINX) bench/run.sh $(CURDIR)/$(MODULE)

clean:
	rm -rf $(BUILD) t/servroot*

# --- packages and other nginx versions ---------------------------------------

VERSION := $(shell sed -n 's/^\#define NGX_HTTP_LLM_VERSION  *"\(.*\)"/\1/p' \
                       ngx_http_llm_module/ngx_http_llm_module.h)
DEB_DIR := $(BUILD)/deb
DEB     := $(DEB_DIR)/libnginx-mod-http-llm_$(VERSION)_$(shell dpkg --print-architecture 2>/dev/null).deb

# the Debian package, built from a copy of the tree (dpkg-buildpackage
# writes next to the source), checked by lintian
deb:
	@scripts/deps.sh deb
	@head -1 debian/changelog | grep -q "($(VERSION))" || { \
	    echo "debian/changelog is not at version $(VERSION)" >&2; exit 1; }
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/libnginx-mod-http-llm-$(VERSION)
	tar --exclude=./build --exclude='./t/servroot*' --exclude=./.git \
	    --exclude=./node_modules --exclude='./t/client/node_modules' -cf - . \
	    | tar -xf - -C $(DEB_DIR)/libnginx-mod-http-llm-$(VERSION)
	cd $(DEB_DIR)/libnginx-mod-http-llm-$(VERSION) \
	    && dpkg-buildpackage -b -us -uc > ../build.log 2>&1 \
	    || { tail -40 $(DEB_DIR)/build.log; exit 1; }
	lintian --fail-on error $(DEB)
	@echo "$(DEB)"

# nginx built from a source tree (a release or a checkout of nginx's
# repository) with --with-compat, and the module for it:
#   make nginx-from-source NGINX_SRC=/path/to/nginx-1.31.4
#   make smoke NGINX_SRC=/path/to/nginx-1.31.4
SRC_BUILD := $(BUILD)/src-$(notdir $(NGINX_SRC))

nginx-from-source: $(BUILD)/.deps
	NGINX_BIN= scripts/build.sh $(NGINX_SRC) $(SRC_BUILD) --with-http_ssl_module
	$(MAKE) -C $(SRC_BUILD) -f objs/Makefile
	@echo "$(SRC_BUILD)/objs/nginx and $(SRC_BUILD)/objs/ngx_http_llm_module.so"

# the smoke test (chat, stream, failover, a key with limits, a translated
# dialect) against that nginx: no other dynamic module is loaded
smoke: nginx-from-source test-deps
	TEST_NGINX_BINARY=$(CURDIR)/$(SRC_BUILD)/objs/nginx \
	    TEST_NGINX_LOAD_MODULES="$(CURDIR)/$(SRC_BUILD)/objs/ngx_http_llm_module.so" \
	    prove t/900-smoke.t
