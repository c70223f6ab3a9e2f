// SPDX-License-Identifier: GPL-2.0-only
/*
 * Test-only module: raises a WARN when loaded, so that the harness
 * selftest can prove a kernel warning fails the test that caused it.
 * Never installed; loaded by path from tools/testing/harness-selftest.
 */
#include <linux/module.h>
#include <linux/bug.h>

static int __init dmtest_warn_init(void)
{
	WARN(1, "dmtest_warn: deliberate warning for the harness selftest\n");
	return 0;
}

static void __exit dmtest_warn_exit(void)
{
}

module_init(dmtest_warn_init);
module_exit(dmtest_warn_exit);
MODULE_DESCRIPTION("Harness selftest: deliberately WARNs on load");
MODULE_LICENSE("GPL");
