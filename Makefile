# SPDX-License-Identifier: GPL-2.0-only
#
# Out-of-tree entry point. Dropped into a kernel tree, Kconfig and the Kbuild
# files are used instead and this file is ignored.
#
#   make                 build our modules against the target kernel's headers
#   make check           build, then run the suite in the VM on our modules
#   make check DM=stock  ... on Debian's stock modules (also: make check-stock)
#                        DM=stock-core: stock dm-mod + our targets
#                        DM=ours-core:  our dm-mod + stock targets (test-only)
#   make check TESTS=expr        select tests (pytest -k expression)
#   make demo            real userspace tools on our modules in the VM
#   make bench           fio: raw device vs stock vs ours, one VM boot
#   make vm-shell        interactive guest (DM=... selects the module set)
#   make setup           install what the build and the VM need (apt)
#   make install         install our modules into /lib/modules/$(KVER)/updates

KVER	?= $(shell tools/testing/vm/kver)
KDIR	?= /lib/modules/$(KVER)/build
DM	?= ours
TESTS	?=
export TESTS

# Every option of Kconfig, as modules. Stock Debian lacks some of these
# (dust, ebs, clone, two path selectors); we build them all.
# CONFIG_BLK_DEV_DM=m joins this list once dm-core/ links.
DM_CONFIG := \
	CONFIG_DM_UNSTRIPED=m

# For DM=stock-core: only what replaces modules without a kernel-header API;
# dm-mod and the public-header libraries come from stock.
STOCK_CORE_CONFIG := $(filter-out CONFIG_BLK_DEV_DM=% CONFIG_DM_BUFIO=% \
	CONFIG_DM_MIRROR=% CONFIG_DM_REGION_HASH=%,$(DM_CONFIG))

SRC_DIRS := dm-core targets persistent-data path-selectors include
SC_TOP := $(CURDIR)/.build/stock-core

.PHONY: all modules stock-core-modules check check-stock demo bench vm-shell \
	setup install clean checkpatch harness-selftest

all: modules

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(DM_CONFIG) modules

# The same sources built a second time, linked against the stock core.
stock-core-modules:
	@mkdir -p $(SC_TOP)
	@rsync -a --delete --include='*/' --include='*.[ch]' --include=Kbuild \
		--exclude='*' $(addprefix $(CURDIR)/,$(SRC_DIRS) Kbuild) $(SC_TOP)/
	$(MAKE) -C $(KDIR) M=$(SC_TOP) $(STOCK_CORE_CONFIG) modules

setup:
	tools/testing/vm/setup

check: $(if $(filter stock,$(DM)),,$(if $(filter stock-core,$(DM)),stock-core-modules,modules))
	tools/testing/dm/run-suite --dm $(DM)

check-stock:
	$(MAKE) check DM=stock

harness-selftest:
	tools/testing/dm/selftest/run

demo: $(if $(filter stock,$(DM)),,modules)
	tools/testing/vm/run --dm $(DM) -- tools/testing/demo/demo.sh

bench: modules
	tools/testing/bench/run

vm-shell: $(if $(filter stock,$(DM)),,$(if $(filter stock-core,$(DM)),stock-core-modules,modules))
	tools/testing/vm/run --dm $(DM) --shell

install: modules
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(DM_CONFIG) INSTALL_MOD_DIR=updates modules_install
	depmod -a $(KVER)

checkpatch:
	@$(KDIR)/scripts/checkpatch.pl --no-tree -q --terse \
		$$(git ls-files '*.c' '*.h') || true

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean
	rm -rf .build
