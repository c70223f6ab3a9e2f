// SPDX-License-Identifier: GPL-2.0-only
/*
 * Bio prison: a red-black tree of cells, each covering a block range of
 * one device, holding the bios that must wait for the range to settle.
 */
#include <linux/mempool.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "dm-bio-prison.h"

#define DM_MSG_PREFIX "bio-prison"

struct dm_prison {
	spinlock_t lock;
	struct rb_root cells;
	/* Enough cells are kept back for the worker to make progress. */
	mempool_t cell_pool;
};

static struct kmem_cache *cell_cache;

struct dm_prison *dm_prison_create(void)
{
	struct dm_prison *prison = kzalloc(sizeof(*prison), GFP_KERNEL);

	if (!prison)
		return NULL;
	spin_lock_init(&prison->lock);
	prison->cells = RB_ROOT;
	if (mempool_init_slab_pool(&prison->cell_pool, 1024, cell_cache)) {
		kfree(prison);
		return NULL;
	}
	return prison;
}
EXPORT_SYMBOL_GPL(dm_prison_create);

void dm_prison_destroy(struct dm_prison *prison)
{
	WARN_ON(!RB_EMPTY_ROOT(&prison->cells));
	mempool_exit(&prison->cell_pool);
	kfree(prison);
}
EXPORT_SYMBOL_GPL(dm_prison_destroy);

struct dm_prison_cell *dm_prison_alloc_cell(struct dm_prison *prison,
					    gfp_t gfp)
{
	return mempool_alloc(&prison->cell_pool, gfp);
}
EXPORT_SYMBOL_GPL(dm_prison_alloc_cell);

void dm_prison_free_cell(struct dm_prison *prison, struct dm_prison_cell *cell)
{
	mempool_free(cell, &prison->cell_pool);
}
EXPORT_SYMBOL_GPL(dm_prison_free_cell);

/* Overlapping ranges compare equal: the tree never holds two that overlap. */
static int key_cmp(const struct dm_prison_key *a, const struct dm_prison_key *b)
{
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (a->end <= b->begin)
		return -1;
	if (a->begin >= b->end)
		return 1;
	return 0;
}

int dm_prison_detain(struct dm_prison *prison, const struct dm_prison_key *key,
		     struct bio *bio, struct dm_prison_cell *prealloc,
		     struct dm_prison_cell **cell)
{
	struct rb_node **link, *parent = NULL;
	unsigned long flags;

	spin_lock_irqsave(&prison->lock, flags);
	link = &prison->cells.rb_node;
	while (*link) {
		struct dm_prison_cell *c = rb_entry(*link, struct dm_prison_cell,
						    node);
		int r = key_cmp(key, &c->key);

		parent = *link;
		if (r < 0) {
			link = &parent->rb_left;
		} else if (r > 0) {
			link = &parent->rb_right;
		} else {
			if (bio)
				bio_list_add(&c->waiters, bio);
			*cell = c;
			spin_unlock_irqrestore(&prison->lock, flags);
			return 1;
		}
	}
	prealloc->key = *key;
	prealloc->holder = bio;
	bio_list_init(&prealloc->waiters);
	rb_link_node(&prealloc->node, parent, link);
	rb_insert_color(&prealloc->node, &prison->cells);
	*cell = prealloc;
	spin_unlock_irqrestore(&prison->lock, flags);
	return 0;
}
EXPORT_SYMBOL_GPL(dm_prison_detain);

void dm_prison_release(struct dm_prison *prison, struct dm_prison_cell *cell,
		       struct bio_list *bios)
{
	unsigned long flags;

	spin_lock_irqsave(&prison->lock, flags);
	rb_erase(&cell->node, &prison->cells);
	bio_list_merge(bios, &cell->waiters);
	bio_list_init(&cell->waiters);
	spin_unlock_irqrestore(&prison->lock, flags);
}
EXPORT_SYMBOL_GPL(dm_prison_release);

static int __init dm_bio_prison_init(void)
{
	cell_cache = KMEM_CACHE(dm_prison_cell, 0);
	return cell_cache ? 0 : -ENOMEM;
}

static void __exit dm_bio_prison_exit(void)
{
	kmem_cache_destroy(cell_cache);
}

module_init(dm_bio_prison_init);
module_exit(dm_bio_prison_exit);

MODULE_DESCRIPTION("device-mapper bio prison");
MODULE_LICENSE("GPL");
