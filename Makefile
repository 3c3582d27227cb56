# Build and install parfor as a C library.
#
#   make                                   # build target/release/libparfor.{so,a} and the
#                                          # installable target/release/dist/libparfor.so.X.Y.Z
#   make install [PREFIX=/usr/local] [DESTDIR=]   # install (see README: "Installing")
#   make uninstall [PREFIX=...] [DESTDIR=]        # remove exactly what install wrote
#   make header                            # regenerate include/parfor.h (cargo run -p parfor-header)
#   make check-header                      # fail if include/parfor.h is stale
#   make abi-check                         # abidiff against the last release (abi/)
#   make compare                           # the README's main job: the libraries, then the comparison
#
# Why a Makefile and not cargo-c: see README ("Installing"). In short, this is what
# `cargo cinstall` would do for this crate (SONAME, versioned file name and links,
# pkg-config file, header), plus the CMake package and the version script, without
# compiling cargo-c (minutes on a 2-core CI machine, in every fresh run).

PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
CARGO ?= cargo
CC ?= cc
# Where cargo leaves libparfor.{so,a}; NO_BUILD=1 installs what is there without
# running cargo (the tests install the libraries of their own cargo run this way).
BUILD_DIR ?= target/release
NO_BUILD ?=

# The version, from Cargo.toml (the one place it is written).
VERSION := $(shell sed -n 's/^version = "\([0-9.]*\)"$$/\1/p' Cargo.toml | head -n 1)
MAJOR := $(word 1,$(subst ., ,$(VERSION)))
SONAME := libparfor.so.$(MAJOR)
DIST ?= $(BUILD_DIR)/dist
VERSION_SCRIPT ?= abi/parfor.map
SHARED := $(DIST)/libparfor.so.$(VERSION)

D := $(DESTDIR)
INSTALLED := $(LIBDIR)/libparfor.so.$(VERSION) $(LIBDIR)/$(SONAME) $(LIBDIR)/libparfor.so \
	$(LIBDIR)/libparfor.a $(INCLUDEDIR)/parfor.h $(LIBDIR)/pkgconfig/parfor.pc \
	$(LIBDIR)/cmake/parfor/parforConfig.cmake $(LIBDIR)/cmake/parfor/parforConfigVersion.cmake

.PHONY: all cargo-build install uninstall header check-header abi-check compare

all: $(SHARED)

cargo-build:
ifeq ($(NO_BUILD),)
	$(CARGO) build --release -p parfor --lib
endif

# The installed shared library: the objects of libparfor.a (the same compilation as
# cargo's libparfor.so) linked with abi/parfor.map, so that only parfor_* is exported,
# each as parfor_x@@PARFOR_0, under the SONAME libparfor.so.MAJOR. cargo's own
# libparfor.so cannot carry the version node: rustc passes the linker a version script
# of its own first (see build.rs).
$(SHARED): cargo-build $(VERSION_SCRIPT)
	mkdir -p $(DIST)
	$(CC) -shared -o $@.tmp -Wl,--whole-archive $(BUILD_DIR)/libparfor.a -Wl,--no-whole-archive \
		-Wl,--version-script=$(VERSION_SCRIPT) -Wl,-soname,$(SONAME) -Wl,--no-undefined \
		-Wl,--gc-sections -Wl,-z,relro,-z,now -Wl,-z,noexecstack -lgcc_s -lpthread -ldl -lm -lc
	mv $@.tmp $@
	ln -sf libparfor.so.$(VERSION) $(DIST)/$(SONAME)
	ln -sf $(SONAME) $(DIST)/libparfor.so

define subst_paths
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
		-e 's|@VERSION@|$(VERSION)|g' -e 's|@MAJOR@|$(MAJOR)|g' $(1) > $(2).tmp && mv $(2).tmp $(2)
endef

install: all
	install -d $(D)$(LIBDIR) $(D)$(INCLUDEDIR) $(D)$(LIBDIR)/pkgconfig $(D)$(LIBDIR)/cmake/parfor
	install -m 755 $(SHARED) $(D)$(LIBDIR)/libparfor.so.$(VERSION)
	ln -sf libparfor.so.$(VERSION) $(D)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(D)$(LIBDIR)/libparfor.so
	install -m 644 $(BUILD_DIR)/libparfor.a $(D)$(LIBDIR)/libparfor.a
	install -m 644 include/parfor.h $(D)$(INCLUDEDIR)/parfor.h
	$(call subst_paths,packaging/parfor.pc.in,$(D)$(LIBDIR)/pkgconfig/parfor.pc)
	$(call subst_paths,packaging/parforConfig.cmake.in,$(D)$(LIBDIR)/cmake/parfor/parforConfig.cmake)
	$(call subst_paths,packaging/parforConfigVersion.cmake.in,$(D)$(LIBDIR)/cmake/parfor/parforConfigVersion.cmake)
ifeq ($(DESTDIR),)
	@# The loader finds a new library in /usr/local/lib only once its cache knows it
	@# (a library in another prefix is found through the program's rpath).
	-@case "$(LIBDIR)" in /usr/lib|/usr/local/lib) \
		if [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi;; esac
endif

uninstall:
	rm -f $(addprefix $(D),$(INSTALLED))
	-rmdir $(D)$(LIBDIR)/cmake/parfor 2>/dev/null

header:
	$(CARGO) run -p parfor-header

check-header:
	$(CARGO) run -p parfor-header -- --check

abi-check: all
	sh abi/check.sh abi/parfor-0.1.0.abi $(SHARED) include

compare:
	$(CARGO) build --release -p parfor --lib
	$(CARGO) run --release -p parfor-compare -- $(ARGS)
