/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Private structures shared by the files of dm-mod. Nothing here is part
 * of the in-kernel target API; targets only see linux/device-mapper.h.
 */
#ifndef DM_CORE_INTERNAL_H
#define DM_CORE_INTERNAL_H

#include <linux/device-mapper.h>
#include <linux/blkdev.h>
#include <linux/bio.h>
#include <linux/kobject.h>
#include <linux/completion.h>
#include <linux/mempool.h>
#include <linux/srcu.h>
#include <linux/hdreg.h>
#include <linux/workqueue.h>
#include <linux/wait.h>

#include "dm-exports.h"
#include "dm-stats.h"
#include "dm-ima.h"

#define DM_IOCTL_VERSION_STR "4.47.0-ioctl (2022-07-28)"
#define DM_MAX_TARGETS 1048576


/* Private suspend flags for dm_suspend() */
#define DM_SUSPEND_LOCKFS_FLAG	(1 << 0)
#define DM_SUSPEND_NOFLUSH_FLAG	(1 << 1)

/* md->flags bits */
enum {
	DMF_BLOCK_IO,		/* new bios are held on the deferred list */
	DMF_SUSPENDED,		/* user (or internal-on-user) suspended */
	DMF_FROZEN,		/* we froze the filesystem at suspend */
	DMF_FREEING,		/* being torn down: no new opens/lookups */
	DMF_DELETING,		/* removal started */
	DMF_NOFLUSH_SUSPENDING,
	DMF_DEFERRED_REMOVE,
	DMF_SUSPENDED_INTERNALLY,
	DMF_POST_SUSPENDING,
	DMF_DISK_ADDED,
};

/* One open of a lower device, shared by every table of a mapped device. */
struct table_device {
	struct list_head list;
	refcount_t count;
	bool linked;		/* holder link created */
	struct dm_dev dm_dev;
};

/* A table's reference to a table_device. */
struct dm_dev_internal {
	struct list_head list;
	refcount_t count;
	struct table_device *td;
};

struct dm_table {
	struct mapped_device *md;
	enum dm_queue_mode type;
	unsigned int num_targets;
	unsigned int num_allocated;
	struct dm_target *targets;
	struct target_type *immutable_target_type;
	fmode_t mode;
	bool integrity_supported;
	bool has_devices_checked;
	struct list_head devices;	/* dm_dev_internal */
	unsigned int per_io_data_size;
	bool bs_ready;
	struct bio_set bs;		/* clones for this table's targets */
	void (*event_fn)(void *ctx);
	void *event_context;
};

struct dm_sysfs_holder {
	struct kobject kobj;
	struct completion done;
};

struct mapped_device {
	struct mutex suspend_lock;
	struct mutex table_devices_lock;
	struct list_head table_devices;
	struct srcu_struct io_barrier;

	struct dm_table __rcu *map;
	void *interface_ptr;		/* hash cell of dm-ioctl */
	unsigned long flags;
	enum dm_queue_mode type;
	struct target_type *immutable_target_type;
	struct mutex type_lock;

	atomic_t holders;
	atomic_t open_count;
	int minor;
	int numa_node_id;

	struct gendisk *disk;
	struct request_queue *queue;
	struct queue_limits limits_cache;

	atomic_t in_flight;
	wait_queue_head_t wait;		/* in_flight drain, holders */

	spinlock_t deferred_lock;
	struct bio_list deferred;
	struct work_struct work;
	struct workqueue_struct *wq;

	atomic_t event_nr;
	wait_queue_head_t eventq;
	atomic_t uevent_seq;
	struct list_head uevent_list;
	spinlock_t uevent_lock;

	unsigned int internal_suspend_count;
	struct block_device *frozen_bdev;

	struct hd_geometry geometry;
	mempool_t io_pool;		/* struct dm_io */
	struct bio_set split_bs;

	struct dm_stats stats;		/* @stats_* regions */
	struct dm_ima_state ima;	/* what IMA records last said */

	struct dm_sysfs_holder kobj_holder;
	char name[16];			/* "major:minor", for messages */
};

/* Per original bio (or split piece) being mapped. */
struct dm_io {
	struct mapped_device *md;
	struct bio *orig_bio;
	atomic_t pending;
	blk_status_t status;
	spinlock_t lock;
	bool flush_with_data;
	unsigned long start_time;
	struct dm_stats_aux stats_aux;
};

/* Sits right in front of every clone; per-bio data comes before it. */
struct dm_target_io {
	struct dm_io *io;
	struct dm_target *ti;
	unsigned int target_bio_nr;
	unsigned int len;		/* sectors the clone covers */
	unsigned int *len_ptr;		/* set while in map: partial accept */
	struct bio clone;
};

static inline struct dm_target_io *clone_to_tio(struct bio *bio)
{
	return container_of(bio, struct dm_target_io, clone);
}

/* dm.c */
int dm_core_init(void);
void dm_core_exit(void);
int dm_create(int minor, struct mapped_device **result);
void dm_destroy(struct mapped_device *md);
void dm_destroy_immediate(struct mapped_device *md);
int dm_lock_for_deletion(struct mapped_device *md, bool mark_deferred,
			 bool only_deferred);
int dm_cancel_deferred_remove(struct mapped_device *md);
void dm_deferred_remove(void);
int dm_open_count(struct mapped_device *md);
bool dm_is_deleting(struct mapped_device *md);
bool dm_suspended_md(struct mapped_device *md);
bool dm_suspended_internally_md(struct mapped_device *md);
bool dm_test_deferred_remove_flag(struct mapped_device *md);
int dm_get_geometry(struct mapped_device *md, struct hd_geometry *geo);
int dm_set_geometry(struct mapped_device *md, struct hd_geometry *geo);
int dm_setup_md_queue(struct mapped_device *md, struct dm_table *t);
enum dm_queue_mode dm_get_md_type(struct mapped_device *md);
void dm_set_md_type(struct mapped_device *md, enum dm_queue_mode type);
struct target_type *dm_get_immutable_target_type(struct mapped_device *md);
void dm_lock_md_type(struct mapped_device *md);
void dm_unlock_md_type(struct mapped_device *md);
int dm_kobject_uevent(struct mapped_device *md, enum kobject_action action,
		      unsigned int cookie, bool need_resize);
struct dm_table *dm_get_inactive_table(struct mapped_device *md, int *srcu_idx);
int dm_get_table_device(struct mapped_device *md, dev_t dev, fmode_t mode,
			struct table_device **result);
void dm_put_table_device(struct mapped_device *md, struct table_device *td);
struct mapped_device *dm_get_from_kobject(struct kobject *kobj);
bool dm_disk_added(struct mapped_device *md);
void dm_issue_global_event(void);
unsigned int dm_get_major(void);
u32 dm_get_event_nr(struct mapped_device *md);
int dm_wait_event(struct mapped_device *md, int event_nr);
u32 dm_get_global_event_nr(void);
extern wait_queue_head_t dm_global_eventq;

/* dm-table.c */
int dm_table_alloc_md_pools(struct dm_table *t, struct mapped_device *md);
struct dm_target *dm_table_get_target(struct dm_table *t, unsigned int i);
struct dm_target *dm_table_find_target(struct dm_table *t, sector_t sector);
unsigned int dm_table_get_num_targets(struct dm_table *t);
struct list_head *dm_table_get_devices(struct dm_table *t);
int dm_calculate_queue_limits(struct dm_table *t, struct queue_limits *limits);
int dm_table_set_restrictions(struct dm_table *t, struct request_queue *q,
			      struct queue_limits *limits);
void dm_table_event_callback(struct dm_table *t, void (*fn)(void *), void *ctx);
void dm_table_presuspend_targets(struct dm_table *t);
void dm_table_presuspend_undo_targets(struct dm_table *t);
void dm_table_postsuspend_targets(struct dm_table *t);
int dm_table_resume_targets(struct dm_table *t);
enum dm_queue_mode dm_table_get_type(struct dm_table *t);
struct target_type *dm_table_get_immutable_target_type(struct dm_table *t);
bool dm_table_has_no_data_devices(struct dm_table *t);
int dm_split_args(int *argc, char ***argvp, char *input);

/* dm-target.c */
struct target_type *dm_get_target_type(const char *name);
void dm_put_target_type(struct target_type *tt);
int dm_target_iterate(void (*iter)(struct target_type *tt, void *param),
		      void *param);
int dm_target_init(void);
void dm_target_exit(void);

/* dm-linear.c, dm-stripe.c */
int dm_linear_init(void);
void dm_linear_exit(void);
int dm_stripe_init(void);
void dm_stripe_exit(void);

/* dm-ioctl.c */
int dm_interface_init(void);
void dm_interface_exit(void);
int dm_copy_name_and_uuid(struct mapped_device *md, char *name, char *uuid);
int dm_ioctl_kernel(unsigned int cmd, struct dm_ioctl *param);

/* dm-init.c */
int dm_init_devices(void);
void dm_init_devices_exit(void);

/* dm-sysfs.c */
int dm_sysfs_init(struct mapped_device *md);
void dm_sysfs_exit(struct mapped_device *md);

#endif
