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
#   make bench           fio in one VM boot: stock vs ours per group (core,
#                        crypt, verity, integrity, snapshot, thin); BENCH_GROUPS
#   make vm-shell        interactive guest (DM=... selects the module set)
#   make setup           install what the build and the VM need (apt)
#   make install         install our modules into /lib/modules/$(KVER)/updates

KVER	?= $(shell tools/testing/vm/kver)
KDIR	?= /lib/modules/$(KVER)/build
DM	?= ours
TESTS	?=
export TESTS

# Every tristate option of Kconfig. The kernel's own config sets the stock
# ones, so each is passed explicitly: =m if we build it, empty if not yet.
# Stock Debian lacks some of these (dust, ebs, clone, two path selectors);
# we build them all once they exist.
DM_OPTIONS := BLK_DEV_DM DM_BUFIO DM_BIO_PRISON DM_PERSISTENT_DATA \
	DM_UNSTRIPED DM_CRYPT DM_SNAPSHOT DM_THIN_PROVISIONING DM_CACHE \
	DM_CACHE_SMQ DM_WRITECACHE DM_EBS DM_ERA DM_CLONE DM_MIRROR \
	DM_LOG_USERSPACE DM_RAID DM_ZERO DM_MULTIPATH DM_MULTIPATH_QL \
	DM_MULTIPATH_ST DM_MULTIPATH_HST DM_MULTIPATH_IOA DM_DELAY DM_DUST \
	DM_FLAKEY DM_VERITY DM_SWITCH DM_LOG_WRITES DM_INTEGRITY DM_ZONED
# What exists so far.
DM_BUILT := BLK_DEV_DM DM_UNSTRIPED DM_ZERO DM_FLAKEY DM_DELAY DM_LOG_WRITES DM_SWITCH DM_DUST DM_EBS DM_BUFIO DM_CRYPT DM_SNAPSHOT DM_INTEGRITY DM_VERITY DM_PERSISTENT_DATA DM_BIO_PRISON DM_THIN_PROVISIONING
# For DM=stock-core: dm-mod and the libraries with a kernel-header API
# (bufio, dm-log, region hash) come from stock; the rest is ours.
STOCK_CORE_EXCLUDE := BLK_DEV_DM DM_BUFIO DM_MIRROR

dm_config = $(foreach o,$(DM_OPTIONS),CONFIG_$(o)=$(if $(filter $(o),$(1)),m))
DM_CONFIG := $(call dm_config,$(DM_BUILT))
STOCK_CORE_CONFIG := $(call dm_config,$(filter-out $(STOCK_CORE_EXCLUDE),$(DM_BUILT)))

SRC_DIRS := dm-core targets persistent-data path-selectors include
SC_TOP := $(CURDIR)/.build/stock-core

.PHONY: pdata-check all modules stock-core-modules check check-stock demo bench vm-shell \
	setup install clean checkpatch harness-selftest

all: modules

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(DM_CONFIG) modules

# The same sources built a second time, linked against the stock core.
stock-core-modules:
	@mkdir -p $(SC_TOP)
	@cd $(CURDIR) && find $(SRC_DIRS) Kbuild \( -name '*.[ch]' -o -name Kbuild \) \
		-newer $(SC_TOP)/.stamp -exec cp --parents {} $(SC_TOP)/ \; 2>/dev/null || \
		find $(SRC_DIRS) Kbuild \( -name '*.[ch]' -o -name Kbuild \) -exec cp --parents {} $(SC_TOP)/ \;
	@touch $(SC_TOP)/.stamp
	$(MAKE) -C $(KDIR) M=$(SC_TOP) $(STOCK_CORE_CONFIG) modules

setup:
	tools/testing/vm/setup

check: $(if $(filter stock,$(DM)),,$(if $(filter stock-core,$(DM)),stock-core-modules,modules)) pdata-check
	tools/testing/dm/run-suite --dm $(DM)

# persistent-data compiled in userspace, under ASan and UBSan (seconds).
pdata-check:
	$(MAKE) -C tools/testing/pdata check

check-stock:
	$(MAKE) check DM=stock

harness-selftest:
	tools/testing/harness-selftest/run

demo:
	DM=$(DM) tools/testing/demo/run

bench: modules
	tools/testing/bench/run

vm-shell: $(if $(filter stock,$(DM)),,$(if $(filter stock-core,$(DM)),stock-core-modules,modules))
	tools/testing/vm/run --dm $(DM) --shell

install: modules
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(DM_CONFIG) INSTALL_MOD_DIR=updates modules_install
	depmod -a $(KVER)

checkpatch:
	tools/testing/checkpatch

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean
	rm -rf .build

# Debug kernel lane (tools/testing/debug-kernel): the suite on a KASAN,
# lockdep, kmemleak and fault-injection build of the same 6.1 kernel, then a
# kmemleak scan. Not part of CI: see README.md, "Debug kernel lane".
#   make check-debug                 the suite (DM=ours), TESTS= as for check
#   make check-debug FAULT=io|slab   with fail_make_request / failslab armed
#   make check-debug DEBUG_RESUME=1  only the test files not yet passed here
#     (DEBUG_FILES='test_thin*.py' narrows, DEBUG_DEADLINE=HH:MM stops cleanly;
#     tools/testing/debug-kernel/progress show: what remains)
DEBUG_TOP := $(CURDIR)/.build/debug
FAULT ?=

.PHONY: debug-kernel debug-modules check-debug

debug-kernel:
	tools/testing/debug-kernel/build >/dev/null

# The same sources built a third time, against the debug kernel's tree.
debug-modules: debug-kernel
	@mkdir -p $(DEBUG_TOP)
	@cd $(CURDIR) && find $(SRC_DIRS) Kbuild \( -name '*.[ch]' -o -name Kbuild \) \
		-exec cp -p --parents {} $(DEBUG_TOP)/ \;
	$(MAKE) -C $$(tools/testing/debug-kernel/build --obj) M=$(DEBUG_TOP) $(DM_CONFIG) modules

check-debug: $(if $(filter stock,$(DM)),debug-kernel,debug-modules)
	DM=$(DM) tools/testing/debug-kernel/check $(if $(FAULT),--fault $(FAULT))
