// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-persistent-data: the library has no state of its own; loading it only
 * makes its symbols available to the thin, cache and era targets.
 */
#include "pd-internal.h"

MODULE_DESCRIPTION("device-mapper persistent data library");
MODULE_LICENSE("GPL");
MODULE_SOFTDEP("pre: crc32c");
