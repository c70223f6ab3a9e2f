// SPDX-License-Identifier: GPL-2.0-only
/*
 * The control device /dev/mapper/control: the ioctl protocol used by
 * libdevmapper, the name/uuid index of mapped devices and the staged
 * (inactive) tables.
 */
#include "dm-core.h"

#include <linux/module.h>
#include <linux/vmalloc.h>
#include <linux/miscdevice.h>
#include <linux/sched/mm.h>
#include <linux/init.h>
#include <linux/wait.h>
#include <linux/slab.h>
#include <linux/rwsem.h>
#include <linux/dm-ioctl.h>
#include <linux/hdreg.h>
#include <linux/compat.h>
#include <linux/nospec.h>
#include <linux/poll.h>
#include <linux/uaccess.h>

#define DM_MSG_PREFIX "ioctl"
#define DM_DRIVER_EMAIL "dm-devel@redhat.com"
#define DM_PARAM_MAX_SIZE (1U << 30)

struct dm_file {
	/* Global event number last armed with DEV_ARM_POLL. */
	u32 global_event_nr;
};

struct hash_cell {
	struct list_head name_list;	/* kept sorted by name */
	struct list_head uuid_list;
	char *name;
	char *uuid;			/* NULL when the device has none */
	struct mapped_device *md;
	struct dm_table *new_map;	/* staged (inactive) table */
};

static LIST_HEAD(name_cells);
static LIST_HEAD(uuid_cells);
/* Guards the index and every cell's new_map. */
static DECLARE_RWSEM(hash_lock);
/* Guards md->interface_ptr and cell names against concurrent readers. */
static DEFINE_MUTEX(hash_cells_mutex);

static struct hash_cell *get_name_cell(const char *name)
{
	struct hash_cell *hc;

	list_for_each_entry(hc, &name_cells, name_list)
		if (!strcmp(hc->name, name))
			return hc;
	return NULL;
}

static struct hash_cell *get_uuid_cell(const char *uuid)
{
	struct hash_cell *hc;

	list_for_each_entry(hc, &uuid_cells, uuid_list)
		if (!strcmp(hc->uuid, uuid))
			return hc;
	return NULL;
}

static void insert_name_sorted(struct hash_cell *cell)
{
	struct hash_cell *hc;

	list_for_each_entry(hc, &name_cells, name_list) {
		if (strcmp(hc->name, cell->name) > 0) {
			list_add_tail(&cell->name_list, &hc->name_list);
			return;
		}
	}
	list_add_tail(&cell->name_list, &name_cells);
}

static void free_cell(struct hash_cell *hc)
{
	kfree(hc->name);
	kfree(hc->uuid);
	kfree(hc);
}

static int check_name(const char *name)
{
	if (strchr(name, '/')) {
		DMERR("device name cannot contain '/'");
		return -EINVAL;
	}
	if (!strcmp(name, DM_CONTROL_NODE) || !strcmp(name, ".") ||
	    !strcmp(name, "..")) {
		DMERR("device name cannot be \"%*pE\"", (int)strlen(name), name);
		return -EINVAL;
	}
	return 0;
}

static int dm_hash_insert(const char *name, const char *uuid,
			  struct mapped_device *md)
{
	struct hash_cell *cell;

	cell = kzalloc(sizeof(*cell), GFP_KERNEL);
	if (!cell)
		return -ENOMEM;
	cell->name = kstrdup(name, GFP_KERNEL);
	if (uuid)
		cell->uuid = kstrdup(uuid, GFP_KERNEL);
	if (!cell->name || (uuid && !cell->uuid)) {
		free_cell(cell);
		return -ENOMEM;
	}
	INIT_LIST_HEAD(&cell->uuid_list);
	cell->md = md;

	down_write(&hash_lock);
	if (get_name_cell(name) || (uuid && get_uuid_cell(uuid))) {
		up_write(&hash_lock);
		free_cell(cell);
		return -EBUSY;
	}
	insert_name_sorted(cell);
	if (uuid)
		list_add(&cell->uuid_list, &uuid_cells);
	dm_get(md);
	mutex_lock(&hash_cells_mutex);
	dm_set_mdptr(md, cell);
	mutex_unlock(&hash_cells_mutex);
	up_write(&hash_lock);
	return 0;
}

/* Unlinks a cell; returns the staged table for the caller to destroy. */
static struct dm_table *hash_remove(struct hash_cell *hc)
{
	struct dm_table *table;
	int srcu_idx;

	list_del(&hc->name_list);
	if (hc->uuid)
		list_del(&hc->uuid_list);
	mutex_lock(&hash_cells_mutex);
	dm_set_mdptr(hc->md, NULL);
	mutex_unlock(&hash_cells_mutex);

	table = dm_get_live_table(hc->md, &srcu_idx);
	if (table)
		dm_table_event(table);
	dm_put_live_table(hc->md, srcu_idx);

	table = hc->new_map;
	dm_put(hc->md);
	free_cell(hc);
	return table;
}

static void dm_hash_remove_all(bool keep_open_devices, bool mark_deferred,
			       bool only_deferred)
{
	struct hash_cell *hc;
	struct mapped_device *md;
	struct dm_table *t;
	int dev_skipped;

retry:
	dev_skipped = 0;
	down_write(&hash_lock);
	list_for_each_entry(hc, &name_cells, name_list) {
		md = hc->md;
		dm_get(md);
		if (keep_open_devices &&
		    dm_lock_for_deletion(md, mark_deferred, only_deferred)) {
			dm_put(md);
			dev_skipped++;
			continue;
		}
		t = hash_remove(hc);
		up_write(&hash_lock);
		if (t) {
			dm_sync_table(md);
			dm_table_destroy(t);
		}
		dm_ima_measure_remove(md, true);
		if (keep_open_devices)
			dm_destroy(md);
		else
			dm_destroy_immediate(md);
		/* One removal may have released another device. */
		goto retry;
	}
	up_write(&hash_lock);

	if (dev_skipped && !only_deferred)
		DMWARN("remove_all left %d open device(s)", dev_skipped);
}

void dm_deferred_remove(void)
{
	dm_hash_remove_all(true, false, true);
}

int dm_copy_name_and_uuid(struct mapped_device *md, char *name, char *uuid)
{
	struct hash_cell *hc;
	int r = 0;

	if (!md)
		return -ENXIO;
	mutex_lock(&hash_cells_mutex);
	hc = dm_get_mdptr(md);
	if (!hc) {
		r = -ENXIO;
		goto out;
	}
	if (name)
		strcpy(name, hc->name);
	if (uuid)
		strcpy(uuid, hc->uuid ? hc->uuid : "");
out:
	mutex_unlock(&hash_cells_mutex);
	return r;
}
EXPORT_SYMBOL_GPL(dm_copy_name_and_uuid);

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static inline void *align_ptr(void *ptr)
{
	return (void *)(((unsigned long)ptr + 7) & ~7UL);
}

/* Output goes at the first 8-aligned offset after the header. */
static void *get_result_buffer(struct dm_ioctl *param, size_t param_size,
			       size_t *len)
{
	param->data_start = align_ptr(param->data) - (void *)param;
	if (param->data_start < param_size)
		*len = param_size - param->data_start;
	else
		*len = 0;
	return (void *)param + param->data_start;
}

/* Zero when a NUL occurs before @end. */
static int invalid_str(const char *str, const void *end)
{
	while ((const void *)str < end)
		if (!*str++)
			return 0;
	return -EINVAL;
}

/* The string at data_start, checked to lie inside the buffer. */
static char *payload_string(struct dm_ioctl *param, size_t param_size)
{
	char *s;

	if (param->data_start < offsetof(struct dm_ioctl, data) ||
	    param->data_start >= param_size)
		return NULL;
	s = (char *)param + param->data_start;
	if (invalid_str(s, (void *)param + param_size))
		return NULL;
	return s;
}

static struct hash_cell *find_cell(struct dm_ioctl *param)
{
	struct hash_cell *hc = NULL;

	if (*param->uuid) {
		if (*param->name || param->dev)
			return NULL;
		hc = get_uuid_cell(param->uuid);
	} else if (*param->name) {
		if (param->dev)
			return NULL;
		hc = get_name_cell(param->name);
	} else if (param->dev) {
		struct mapped_device *md = dm_get_md(huge_decode_dev(param->dev));

		if (!md)
			return NULL;
		hc = dm_get_mdptr(md);
		dm_put(md);
	}
	if (!hc)
		return NULL;

	/* Report the stored identity back. */
	strscpy(param->name, hc->name, sizeof(param->name));
	strscpy(param->uuid, hc->uuid ? hc->uuid : "", sizeof(param->uuid));
	if (hc->new_map)
		param->flags |= DM_INACTIVE_PRESENT_FLAG;
	else
		param->flags &= ~DM_INACTIVE_PRESENT_FLAG;
	return hc;
}

/* Looks the device up and takes a reference on it. */
static struct mapped_device *find_device(struct dm_ioctl *param)
{
	struct mapped_device *md = NULL;
	struct hash_cell *hc;

	down_read(&hash_lock);
	hc = find_cell(param);
	if (hc) {
		md = hc->md;
		dm_get(md);
	}
	up_read(&hash_lock);
	return md;
}

static struct dm_table *get_inactive_table(struct mapped_device *md,
					   int *srcu_idx)
{
	struct hash_cell *hc;
	struct dm_table *table = NULL;

	/* The srcu read lock keeps a concurrently replaced table alive. */
	dm_get_live_table(md, srcu_idx);
	down_read(&hash_lock);
	hc = dm_get_mdptr(md);
	if (hc && hc->md == md)
		table = hc->new_map;
	up_read(&hash_lock);
	return table;
}

static struct dm_table *get_live_or_inactive(struct mapped_device *md,
					     struct dm_ioctl *param,
					     int *srcu_idx)
{
	return (param->flags & DM_QUERY_INACTIVE_TABLE_FLAG) ?
		get_inactive_table(md, srcu_idx) :
		dm_get_live_table(md, srcu_idx);
}

static void dev_status_fill(struct mapped_device *md, struct dm_ioctl *param)
{
	struct gendisk *disk = dm_disk(md);
	struct dm_table *table;
	int srcu_idx;

	param->flags &= ~(DM_SUSPEND_FLAG | DM_READONLY_FLAG |
			  DM_ACTIVE_PRESENT_FLAG | DM_INTERNAL_SUSPEND_FLAG);
	if (dm_suspended_md(md))
		param->flags |= DM_SUSPEND_FLAG;
	if (dm_suspended_internally_md(md))
		param->flags |= DM_INTERNAL_SUSPEND_FLAG;
	if (dm_test_deferred_remove_flag(md))
		param->flags |= DM_DEFERRED_REMOVE;

	param->dev = huge_encode_dev(MKDEV(dm_get_major(), disk->first_minor));
	param->open_count = dm_open_count(md);
	param->event_nr = dm_get_event_nr(md);
	param->target_count = 0;

	table = dm_get_live_table(md, &srcu_idx);
	if (table) {
		if (!(param->flags & DM_QUERY_INACTIVE_TABLE_FLAG)) {
			if (get_disk_ro(disk))
				param->flags |= DM_READONLY_FLAG;
			param->target_count = dm_table_get_num_targets(table);
		}
		param->flags |= DM_ACTIVE_PRESENT_FLAG;
	}
	dm_put_live_table(md, srcu_idx);

	if (param->flags & DM_QUERY_INACTIVE_TABLE_FLAG) {
		table = get_inactive_table(md, &srcu_idx);
		if (table) {
			if (!(dm_table_get_mode(table) & FMODE_WRITE))
				param->flags |= DM_READONLY_FLAG;
			param->target_count = dm_table_get_num_targets(table);
		}
		dm_put_live_table(md, srcu_idx);
	}
}

/* ------------------------------------------------------------------ */
/* Commands                                                            */

static int remove_all(struct file *filp, struct dm_ioctl *param,
		      size_t param_size)
{
	dm_hash_remove_all(true, !!(param->flags & DM_DEFERRED_REMOVE), false);
	param->data_size = 0;
	return 0;
}

static bool filter_device(struct hash_cell *hc, const char *pfx_name,
			  const char *pfx_uuid)
{
	size_t n;

	if (*pfx_name) {
		n = strnlen(pfx_name, DM_NAME_LEN);
		if (strncmp(hc->name, pfx_name, n))
			return true;
	}
	if (*pfx_uuid) {
		if (!hc->uuid)
			return true;
		n = strnlen(pfx_uuid, DM_UUID_LEN);
		if (strncmp(hc->uuid, pfx_uuid, n))
			return true;
	}
	return false;
}

static int list_devices(struct file *filp, struct dm_ioctl *param,
			size_t param_size)
{
	struct hash_cell *hc;
	size_t len, needed = 0;
	struct dm_name_list *orig_nl, *nl, *old_nl = NULL;
	bool want_uuid = param->flags & DM_UUID_FLAG;
	u32 *event_nr;
	char *uuid_dest;

	down_read(&hash_lock);
	list_for_each_entry(hc, &name_cells, name_list) {
		if (filter_device(hc, param->name, param->uuid))
			continue;
		needed += ALIGN(offsetof(struct dm_name_list, name) +
				strlen(hc->name) + 1, 8);
		needed += 8;
		if (want_uuid && hc->uuid)
			needed += ALIGN(strlen(hc->uuid) + 1, 8);
	}

	nl = orig_nl = get_result_buffer(param, param_size, &len);
	if (len < needed || len < sizeof(nl->dev)) {
		param->flags |= DM_BUFFER_FULL_FLAG;
		goto out;
	}
	param->data_size = param->data_start + needed;
	nl->dev = 0;	/* an empty list */

	list_for_each_entry(hc, &name_cells, name_list) {
		if (filter_device(hc, param->name, param->uuid))
			continue;
		if (old_nl)
			old_nl->next = (u32)((void *)nl - (void *)old_nl);
		nl->dev = huge_encode_dev(MKDEV(dm_get_major(),
						dm_disk(hc->md)->first_minor));
		nl->next = 0;
		strcpy(nl->name, hc->name);
		old_nl = nl;

		event_nr = align_ptr(nl->name + strlen(hc->name) + 1);
		event_nr[0] = dm_get_event_nr(hc->md);
		event_nr[1] = 0;
		uuid_dest = align_ptr(&event_nr[2]);
		if (want_uuid) {
			if (hc->uuid) {
				event_nr[1] |= DM_NAME_LIST_FLAG_HAS_UUID;
				strcpy(uuid_dest, hc->uuid);
				uuid_dest = align_ptr(uuid_dest +
						      strlen(hc->uuid) + 1);
			} else {
				event_nr[1] |= DM_NAME_LIST_FLAG_DOESNT_HAVE_UUID;
			}
		}
		nl = (void *)uuid_dest;
	}
	if (WARN_ON((char *)nl - (char *)orig_nl != needed))
		param->data_size = param->data_start + ((char *)nl - (char *)orig_nl);
out:
	up_read(&hash_lock);
	return 0;
}

struct vers_iter {
	size_t needed;
	unsigned int count;
	u32 flags;
	struct dm_target_versions *vers, *old_vers;
	char *end;
};

static void list_version_get_needed(struct target_type *tt, void *p)
{
	struct vers_iter *info = p;

	info->needed += sizeof(struct dm_target_versions) + strlen(tt->name) + 1 + 7;
	info->count++;
}

static void list_version_get_info(struct target_type *tt, void *p)
{
	struct vers_iter *info = p;

	if ((char *)info->vers + sizeof(struct dm_target_versions) +
	    strlen(tt->name) + 1 > info->end || !info->count) {
		info->flags = DM_BUFFER_FULL_FLAG;
		return;
	}
	info->count--;
	if (info->old_vers)
		info->old_vers->next = (u32)((void *)info->vers -
					     (void *)info->old_vers);
	info->vers->version[0] = tt->version[0];
	info->vers->version[1] = tt->version[1];
	info->vers->version[2] = tt->version[2];
	info->vers->next = 0;
	strcpy(info->vers->name, tt->name);
	info->old_vers = info->vers;
	info->vers = align_ptr((void *)(info->vers + 1) + strlen(tt->name) + 1);
}

static int list_versions_common(struct dm_ioctl *param, size_t param_size,
				const char *name)
{
	struct vers_iter iter = {};
	struct target_type *tt = NULL;
	size_t len;
	void *buf;

	if (name) {
		tt = dm_get_target_type(name);
		if (!tt)
			return -EINVAL;
		list_version_get_needed(tt, &iter);
	} else {
		dm_target_iterate(list_version_get_needed, &iter);
	}

	buf = get_result_buffer(param, param_size, &len);
	if (len < iter.needed) {
		param->flags |= DM_BUFFER_FULL_FLAG;
		goto out;
	}
	param->data_size = param->data_start + iter.needed;

	iter.vers = buf;
	iter.end = (char *)buf + len;
	if (name)
		list_version_get_info(tt, &iter);
	else
		dm_target_iterate(list_version_get_info, &iter);
	param->flags |= iter.flags;
out:
	if (tt)
		dm_put_target_type(tt);
	return 0;
}

static int list_versions(struct file *filp, struct dm_ioctl *param,
			 size_t param_size)
{
	return list_versions_common(param, param_size, NULL);
}

static int get_target_version(struct file *filp, struct dm_ioctl *param,
			      size_t param_size)
{
	return list_versions_common(param, param_size, param->name);
}

static int dev_create(struct file *filp, struct dm_ioctl *param,
		      size_t param_size)
{
	struct mapped_device *md;
	int r, m = DM_ANY_MINOR;

	r = check_name(param->name);
	if (r)
		return r;

	if (param->flags & DM_PERSISTENT_DEV_FLAG)
		m = MINOR(huge_decode_dev(param->dev));

	r = dm_create(m, &md);
	if (r)
		return r;

	r = dm_hash_insert(param->name, *param->uuid ? param->uuid : NULL, md);
	if (r) {
		dm_destroy(md);
		return r;
	}

	param->flags &= ~DM_INACTIVE_PRESENT_FLAG;
	dev_status_fill(md, param);
	dm_put(md);
	return 0;
}

static int dev_remove(struct file *filp, struct dm_ioctl *param,
		      size_t param_size)
{
	struct hash_cell *hc;
	struct mapped_device *md;
	struct dm_table *t;
	int r;

	down_write(&hash_lock);
	hc = find_cell(param);
	if (!hc) {
		DMDEBUG_LIMIT("device doesn't appear to be in the dev hash table.");
		up_write(&hash_lock);
		return -ENXIO;
	}
	md = hc->md;
	dm_get(md);

	r = dm_lock_for_deletion(md, !!(param->flags & DM_DEFERRED_REMOVE),
				 false);
	if (r) {
		up_write(&hash_lock);
		dm_put(md);
		if (r == -EBUSY && (param->flags & DM_DEFERRED_REMOVE))
			return 0;	/* marked; removed on last close */
		DMDEBUG_LIMIT("unable to remove open device %*pE",
			      (int)strlen(param->name), param->name);
		return r;
	}

	t = hash_remove(hc);
	up_write(&hash_lock);
	if (t) {
		dm_sync_table(md);
		dm_table_destroy(t);
	}

	param->flags &= ~DM_DEFERRED_REMOVE;
	dm_ima_measure_remove(md, false);
	if (!dm_kobject_uevent(md, KOBJ_REMOVE, param->event_nr, false))
		param->flags |= DM_UEVENT_GENERATED_FLAG;

	dm_destroy(md);
	return 0;
}

static int dev_rename(struct file *filp, struct dm_ioctl *param,
		      size_t param_size)
{
	bool change_uuid = param->flags & DM_UUID_FLAG;
	struct mapped_device *md;
	struct hash_cell *hc;
	struct dm_table *table;
	char *new_data, *copy;
	int srcu_idx, r;

	new_data = payload_string(param, param_size);
	if (!new_data || !*new_data ||
	    strlen(new_data) > (change_uuid ? DM_UUID_LEN - 1 : DM_NAME_LEN - 1)) {
		DMERR("Invalid new mapped device name or uuid string supplied.");
		return -EINVAL;
	}
	if (!change_uuid) {
		r = check_name(new_data);
		if (r)
			return r;
	}

	copy = kstrdup(new_data, GFP_KERNEL);
	if (!copy)
		return -ENOMEM;

	down_write(&hash_lock);
	if (change_uuid ? get_uuid_cell(copy) != NULL : get_name_cell(copy) != NULL) {
		/* Both strings come from userspace: escape them. */
		DMERR("Unable to change %s on mapped device %*pE to one that already exists: %*pE",
		      change_uuid ? "uuid" : "name", (int)strlen(param->name),
		      param->name, (int)strlen(copy), copy);
		up_write(&hash_lock);
		kfree(copy);
		return -EBUSY;
	}
	hc = get_name_cell(param->name);
	if (!hc) {
		up_write(&hash_lock);
		kfree(copy);
		return -ENXIO;
	}
	if (change_uuid && hc->uuid) {
		DMERR("Unable to change uuid of mapped device %*pE to %*pE because uuid is already set to %*pE",
		      (int)strlen(param->name), param->name, (int)strlen(copy),
		      copy, (int)strlen(hc->uuid), hc->uuid);
		up_write(&hash_lock);
		kfree(copy);
		return -EINVAL;
	}

	mutex_lock(&hash_cells_mutex);
	if (change_uuid) {
		hc->uuid = copy;
		list_add(&hc->uuid_list, &uuid_cells);
	} else {
		list_del(&hc->name_list);
		kfree(hc->name);
		hc->name = copy;
		insert_name_sorted(hc);
	}
	mutex_unlock(&hash_cells_mutex);

	md = hc->md;
	table = dm_get_live_table(md, &srcu_idx);
	if (table)
		dm_table_event(table);
	dm_put_live_table(md, srcu_idx);

	if (!dm_kobject_uevent(md, KOBJ_CHANGE, param->event_nr, false))
		param->flags |= DM_UEVENT_GENERATED_FLAG;
	dm_ima_measure_rename(md);
	dm_get(md);
	up_write(&hash_lock);

	dev_status_fill(md, param);
	dm_put(md);
	return 0;
}

static int dev_set_geometry(struct file *filp, struct dm_ioctl *param,
			    size_t param_size)
{
	struct mapped_device *md;
	struct hd_geometry geometry;
	unsigned long indata[4];
	char *geostr;
	char dummy;
	int r = -EINVAL;

	md = find_device(param);
	if (!md)
		return -ENXIO;

	geostr = payload_string(param, param_size);
	if (!geostr) {
		DMERR("Invalid geometry supplied.");
		goto out;
	}
	if (sscanf(geostr, "%lu %lu %lu %lu%c", indata, indata + 1,
		   indata + 2, indata + 3, &dummy) != 4) {
		DMERR("Unable to interpret geometry settings.");
		goto out;
	}
	if (indata[0] > 65535 || indata[1] > 255 || indata[2] > 255) {
		DMERR("Geometry exceeds range limits.");
		goto out;
	}
	geometry.cylinders = indata[0];
	geometry.heads = indata[1];
	geometry.sectors = indata[2];
	geometry.start = indata[3];

	r = dm_set_geometry(md, &geometry);
	param->data_size = 0;
out:
	dm_put(md);
	return r;
}

static unsigned int suspend_flags_of(struct dm_ioctl *param)
{
	unsigned int flags = DM_SUSPEND_LOCKFS_FLAG;

	if (param->flags & DM_SKIP_LOCKFS_FLAG)
		flags &= ~DM_SUSPEND_LOCKFS_FLAG;
	if (param->flags & DM_NOFLUSH_FLAG)
		flags |= DM_SUSPEND_NOFLUSH_FLAG;
	return flags;
}

static int do_suspend(struct dm_ioctl *param)
{
	struct mapped_device *md;
	int r = 0;

	md = find_device(param);
	if (!md)
		return -ENXIO;
	if (!dm_suspended_md(md)) {
		r = dm_suspend(md, suspend_flags_of(param));
		if (r)
			goto out;
	}
	dev_status_fill(md, param);
out:
	dm_put(md);
	return r;
}

static int do_resume(struct dm_ioctl *param)
{
	struct dm_table *new_map, *old_map = NULL;
	bool need_resize_uevent = false;
	struct mapped_device *md;
	struct hash_cell *hc;
	int r = 0;

	down_write(&hash_lock);
	hc = find_cell(param);
	if (!hc) {
		DMDEBUG_LIMIT("device doesn't appear to be in the dev hash table.");
		up_write(&hash_lock);
		return -ENXIO;
	}
	md = hc->md;
	dm_get(md);
	new_map = hc->new_map;
	hc->new_map = NULL;
	param->flags &= ~DM_INACTIVE_PRESENT_FLAG;
	up_write(&hash_lock);

	if (new_map) {
		sector_t old_size, new_size;

		if (!dm_suspended_md(md)) {
			r = dm_suspend(md, suspend_flags_of(param));
			if (r) {
				down_write(&hash_lock);
				hc = dm_get_mdptr(md);
				if (hc && !hc->new_map) {
					hc->new_map = new_map;
					new_map = NULL;
				} else {
					r = -ENXIO;
				}
				up_write(&hash_lock);
				if (new_map) {
					dm_sync_table(md);
					dm_table_destroy(new_map);
				}
				dm_put(md);
				return r;
			}
		}

		old_size = get_capacity(dm_disk(md));
		old_map = dm_swap_table(md, new_map);
		if (IS_ERR(old_map)) {
			dm_sync_table(md);
			dm_table_destroy(new_map);
			dm_put(md);
			return PTR_ERR(old_map);
		}
		new_size = get_capacity(dm_disk(md));
		need_resize_uevent = old_size && new_size && old_size != new_size;

		set_disk_ro(dm_disk(md),
			    !(dm_table_get_mode(new_map) & FMODE_WRITE));
	}

	if (dm_suspended_md(md)) {
		r = dm_resume(md);
		if (!r) {
			dm_ima_measure_resume(md, new_map != NULL);
			if (!dm_kobject_uevent(md, KOBJ_CHANGE, param->event_nr,
					       need_resize_uevent))
				param->flags |= DM_UEVENT_GENERATED_FLAG;
		}
	}

	if (old_map)
		dm_table_destroy(old_map);
	if (!r)
		dev_status_fill(md, param);
	dm_put(md);
	return r;
}

static int dev_suspend(struct file *filp, struct dm_ioctl *param,
		       size_t param_size)
{
	if (param->flags & DM_SUSPEND_FLAG)
		return do_suspend(param);
	return do_resume(param);
}

static int dev_status(struct file *filp, struct dm_ioctl *param,
		      size_t param_size)
{
	struct mapped_device *md = find_device(param);

	if (!md)
		return -ENXIO;
	dev_status_fill(md, param);
	dm_put(md);
	return 0;
}

/* One spec plus one string per target; see the "next" rule in the spec. */
static void retrieve_status(struct dm_table *table, struct dm_ioctl *param,
			    size_t param_size)
{
	unsigned int i, num_targets;
	struct dm_target_spec *spec;
	char *outbuf, *outptr;
	status_type_t type;
	size_t remaining, len, used = 0;
	unsigned int status_flags = 0;

	outptr = outbuf = get_result_buffer(param, param_size, &len);

	if (param->flags & DM_STATUS_TABLE_FLAG)
		type = STATUSTYPE_TABLE;
	else if (param->flags & DM_IMA_MEASUREMENT_FLAG)
		type = STATUSTYPE_IMA;
	else
		type = STATUSTYPE_INFO;

	num_targets = dm_table_get_num_targets(table);
	for (i = 0; i < num_targets; i++) {
		struct dm_target *ti = dm_table_get_target(table, i);
		size_t l;

		remaining = len - (outptr - outbuf);
		if (remaining <= sizeof(struct dm_target_spec)) {
			param->flags |= DM_BUFFER_FULL_FLAG;
			break;
		}

		spec = (struct dm_target_spec *)outptr;
		spec->status = 0;
		spec->sector_start = ti->begin;
		spec->length = ti->len;
		strscpy_pad(spec->target_type, ti->type->name,
			    sizeof(spec->target_type));

		outptr += sizeof(struct dm_target_spec);
		remaining = len - (outptr - outbuf);

		if (ti->type->status) {
			if (param->flags & DM_NOFLUSH_FLAG)
				status_flags |= DM_STATUS_NOFLUSH_FLAG;
			outptr[0] = '\0';
			ti->type->status(ti, type, status_flags, outptr,
					 remaining);
		} else {
			outptr[0] = '\0';
		}

		l = strlen(outptr) + 1;
		if (l >= remaining) {
			param->flags |= DM_BUFFER_FULL_FLAG;
			break;
		}
		outptr += l;
		used = param->data_start + (outptr - outbuf);

		outptr = align_ptr(outptr);
		spec->next = outptr - outbuf;
		if ((size_t)(outptr - outbuf) > len) {
			param->flags |= DM_BUFFER_FULL_FLAG;
			break;
		}
	}

	if (used)
		param->data_size = used;
	param->target_count = num_targets;
}

typedef void (*table_reader_fn)(struct dm_table *table, struct dm_ioctl *param,
				size_t param_size);

/* Fill the device status, then READ the live (or queried inactive) table. */
static void read_table(struct mapped_device *md, struct dm_ioctl *param,
		       size_t param_size, table_reader_fn read)
{
	struct dm_table *table;
	int srcu_idx;

	dev_status_fill(md, param);
	table = get_live_or_inactive(md, param, &srcu_idx);
	if (table)
		read(table, param, param_size);
	dm_put_live_table(md, srcu_idx);
}

static int dev_wait(struct file *filp, struct dm_ioctl *param,
		    size_t param_size)
{
	struct mapped_device *md;
	int r = 0;

	md = find_device(param);
	if (!md)
		return -ENXIO;

	if (dm_wait_event(md, param->event_nr))
		r = -ERESTARTSYS;
	else
		read_table(md, param, param_size, retrieve_status);
	dm_put(md);
	return r;
}

static int dev_arm_poll(struct file *filp, struct dm_ioctl *param,
			size_t param_size)
{
	struct dm_file *priv = filp->private_data;

	priv->global_event_nr = dm_get_global_event_nr();
	return 0;
}

static fmode_t table_mode(struct dm_ioctl *param)
{
	fmode_t mode = FMODE_READ | FMODE_WRITE;

	if (param->flags & DM_READONLY_FLAG)
		mode = FMODE_READ;
	return mode;
}

/*
 * Finds the next spec: for input, @next is relative to the previous
 * spec's start (the first one is at data_start).
 */
static int next_target(struct dm_ioctl *param, size_t param_size,
		       size_t *offset, struct dm_target_spec **spec,
		       char **target_params)
{
	size_t off = *offset;
	struct dm_target_spec *s;
	char *params;

	if (off < offsetof(struct dm_ioctl, data) || (off & 7) ||
	    off > param_size || param_size - off < sizeof(*s)) {
		DMERR("%s: target spec out of bounds", __func__);
		return -EINVAL;
	}
	s = (struct dm_target_spec *)((char *)param + off);
	if (!memchr(s->target_type, '\0', sizeof(s->target_type))) {
		DMERR("%s: target type name too long", __func__);
		return -EINVAL;
	}
	params = (char *)(s + 1);
	if (invalid_str(params, (char *)param + param_size)) {
		DMERR("%s: unterminated target parameters", __func__);
		return -EINVAL;
	}
	*spec = s;
	*target_params = params;
	return 0;
}

static int populate_table(struct dm_table *table, struct dm_ioctl *param,
			  size_t param_size)
{
	struct dm_target_spec *spec;
	size_t offset = param->data_start;
	char *target_params;
	unsigned int i;
	int r;

	for (i = 0; i < param->target_count; i++) {
		r = next_target(param, param_size, &offset, &spec,
				&target_params);
		if (r) {
			DMERR("unable to find target");
			return r;
		}
		/* Params may not run into the next spec. */
		if (i + 1 < param->target_count) {
			size_t plen = strlen(target_params) + 1;

			if (spec->next < sizeof(*spec) + plen) {
				DMERR("%s: overlapping target specs", __func__);
				return -EINVAL;
			}
		}

		r = dm_table_add_target(table, spec->target_type,
					(sector_t)spec->sector_start,
					(sector_t)spec->length, target_params);
		if (r) {
			DMERR("error adding target to table");
			return r;
		}
		if (check_add_overflow(offset, (size_t)spec->next, &offset))
			return -EINVAL;
	}
	return dm_table_complete(table);
}

static bool is_valid_type(enum dm_queue_mode cur, enum dm_queue_mode new)
{
	if (cur == new)
		return true;
	return cur == DM_TYPE_BIO_BASED && new == DM_TYPE_DAX_BIO_BASED;
}

static bool table_has_wildcard(struct dm_table *t)
{
	unsigned int i;

	for (i = 0; i < dm_table_get_num_targets(t); i++)
		if (dm_target_is_wildcard(dm_table_get_target(t, i)->type))
			return true;
	return false;
}

static int table_load(struct file *filp, struct dm_ioctl *param,
		      size_t param_size)
{
	struct mapped_device *md;
	struct target_type *immutable;
	struct dm_table *t, *old_map;
	struct hash_cell *hc;
	int r;

	md = find_device(param);
	if (!md)
		return -ENXIO;

	if (!param->target_count) {
		DMERR("%s: no targets specified", __func__);
		r = -EINVAL;
		goto err;
	}
	r = dm_table_create(&t, table_mode(param), param->target_count, md);
	if (r)
		goto err;

	dm_lock_md_type(md);
	r = populate_table(t, param, param_size);
	if (r)
		goto err_unlock;
	/* Measured before the checks below, so a refused load is recorded too. */
	dm_ima_measure_table_load(t);

	immutable = dm_get_immutable_target_type(md);
	if (immutable && immutable != dm_table_get_immutable_target_type(t) &&
	    !table_has_wildcard(t)) {
		DMERR("can't replace immutable target type %s", immutable->name);
		r = -EINVAL;
		goto err_unlock;
	}

	if (dm_get_md_type(md) == DM_TYPE_NONE) {
		dm_set_md_type(md, dm_table_get_type(t));
		r = dm_setup_md_queue(md, t);
		if (r) {
			dm_set_md_type(md, DM_TYPE_NONE);
			DMERR("unable to set up device queue for new table.");
			goto err_unlock;
		}
	} else if (!is_valid_type(dm_get_md_type(md), dm_table_get_type(t))) {
		DMERR("can't change device type (old=%u vs new=%u) after initial table load.",
		      dm_get_md_type(md), dm_table_get_type(t));
		r = -EINVAL;
		goto err_unlock;
	}
	dm_unlock_md_type(md);

	down_write(&hash_lock);
	hc = dm_get_mdptr(md);
	if (!hc) {
		DMERR("device has been removed from the dev hash table.");
		up_write(&hash_lock);
		r = -ENXIO;
		goto err_destroy;
	}
	old_map = hc->new_map;
	hc->new_map = t;
	up_write(&hash_lock);

	param->flags |= DM_INACTIVE_PRESENT_FLAG;
	dev_status_fill(md, param);

	if (old_map) {
		dm_sync_table(md);
		dm_table_destroy(old_map);
	}
	dm_put(md);
	return 0;

err_unlock:
	dm_unlock_md_type(md);
err_destroy:
	dm_table_destroy(t);
err:
	dm_put(md);
	return r;
}

static int table_clear(struct file *filp, struct dm_ioctl *param,
		       size_t param_size)
{
	struct mapped_device *md;
	struct dm_table *old_map;
	struct hash_cell *hc;

	down_write(&hash_lock);
	hc = find_cell(param);
	if (!hc) {
		DMDEBUG_LIMIT("device doesn't appear to be in the dev hash table.");
		up_write(&hash_lock);
		return -ENXIO;
	}
	old_map = hc->new_map;
	hc->new_map = NULL;
	md = hc->md;
	dm_get(md);
	up_write(&hash_lock);

	param->flags &= ~DM_INACTIVE_PRESENT_FLAG;
	dev_status_fill(md, param);

	if (old_map) {
		dm_sync_table(md);
		dm_table_destroy(old_map);
	}
	dm_ima_measure_table_clear(md, old_map != NULL);
	dm_put(md);
	return 0;
}

static bool dev_seen_before(struct list_head *head, struct dm_dev_internal *dd)
{
	struct dm_dev_internal *p;

	list_for_each_entry(p, head, list) {
		if (p == dd)
			return false;
		if (p->td->dm_dev.bdev->bd_dev == dd->td->dm_dev.bdev->bd_dev)
			return true;
	}
	return false;
}

static void retrieve_deps(struct dm_table *table, struct dm_ioctl *param,
			  size_t param_size)
{
	struct list_head *devices = dm_table_get_devices(table);
	struct dm_dev_internal *dd;
	struct dm_target_deps *deps;
	unsigned int count = 0;
	size_t len, needed;

	list_for_each_entry(dd, devices, list)
		if (!dev_seen_before(devices, dd))
			count++;

	deps = get_result_buffer(param, param_size, &len);
	needed = struct_size(deps, dev, count);
	if (len < needed) {
		param->flags |= DM_BUFFER_FULL_FLAG;
		return;
	}

	deps->count = count;
	count = 0;
	list_for_each_entry(dd, devices, list)
		if (!dev_seen_before(devices, dd))
			deps->dev[count++] =
				huge_encode_dev(dd->td->dm_dev.bdev->bd_dev);
	param->data_size = param->data_start + needed;
}

static int table_deps(struct file *filp, struct dm_ioctl *param,
		      size_t param_size)
{
	struct mapped_device *md;

	md = find_device(param);
	if (!md)
		return -ENXIO;
	read_table(md, param, param_size, retrieve_deps);
	dm_put(md);
	return 0;
}

static int table_status(struct file *filp, struct dm_ioctl *param,
			size_t param_size)
{
	struct mapped_device *md;

	md = find_device(param);
	if (!md)
		return -ENXIO;
	read_table(md, param, param_size, retrieve_status);
	dm_put(md);
	return 0;
}

/* Messages starting with '@' are for the core, not a target. */
static int message_for_md(struct mapped_device *md, unsigned int argc,
			  char **argv, char *result, unsigned int maxlen)
{
	int r;

	if (!strcasecmp(argv[0], "@cancel_deferred_remove")) {
		if (argc != 1) {
			DMERR("Invalid arguments for @cancel_deferred_remove");
			return -EINVAL;
		}
		return dm_cancel_deferred_remove(md);
	}
	r = dm_stats_message(md, argc, argv, result, maxlen);
	if (r < 2)
		return r;
	DMERR("Unsupported message sent to DM core: %*pE",
	      (int)strlen(argv[0]), argv[0]);
	return -EINVAL;
}

static int target_message(struct file *filp, struct dm_ioctl *param,
			  size_t param_size)
{
	struct mapped_device *md;
	struct dm_target_msg *tmsg;
	struct dm_table *table;
	struct dm_target *ti;
	char *msg, *result, **argv;
	size_t maxlen;
	u64 sector;
	int argc, r, srcu_idx;

	md = find_device(param);
	if (!md)
		return -ENXIO;

	r = -EINVAL;
	if (param->data_start < offsetof(struct dm_ioctl, data) ||
	    param->data_start > param_size ||
	    param_size - param->data_start < sizeof(*tmsg)) {
		DMERR("Invalid target message parameters.");
		goto out;
	}
	tmsg = (void *)param + param->data_start;
	if (invalid_str(tmsg->message, (void *)param + param_size)) {
		DMERR("Invalid target message parameters.");
		goto out;
	}

	/* The reply area overlaps the message: work on a copy. */
	sector = tmsg->sector;
	msg = kstrdup(tmsg->message, GFP_NOIO);
	if (!msg) {
		r = -ENOMEM;
		goto out;
	}
	r = dm_split_args(&argc, &argv, msg);
	if (r) {
		DMERR("Failed to split target message parameters");
		goto out_msg;
	}
	if (!argc) {
		DMERR("Empty message received.");
		r = -EINVAL;
		goto out_argv;
	}

	result = get_result_buffer(param, param_size, &maxlen);
	if (maxlen)
		result[0] = '\0';

	if (**argv == '@') {
		r = message_for_md(md, argc, argv, result, maxlen);
		goto out_status;
	}

	table = dm_get_live_table(md, &srcu_idx);
	if (!table) {
		DMERR("The device has no table.");
		r = -EINVAL;
	} else if (dm_is_deleting(md)) {
		r = -ENXIO;
	} else {
		ti = dm_table_find_target(table, sector);
		if (!ti) {
			DMERR("Target message sector outside device.");
			r = -EINVAL;
		} else if (ti->type->message) {
			r = ti->type->message(ti, argc, argv, result, maxlen);
		} else {
			DMERR("Target type does not support messages");
			r = -EINVAL;
		}
	}
	dm_put_live_table(md, srcu_idx);

out_status:
	if (r >= 0)
		dev_status_fill(md, param);
	if (r == 1) {
		param->flags |= DM_DATA_OUT_FLAG;
		if (!maxlen || strlen(result) + 1 >= maxlen)
			param->flags |= DM_BUFFER_FULL_FLAG;
		else
			param->data_size = param->data_start + strlen(result) + 1;
		r = 0;
	}
out_argv:
	kfree(argv);
out_msg:
	kfree_sensitive(msg);
out:
	dm_put(md);
	return r;
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */

#define IOCTL_FLAGS_NO_PARAMS		1
#define IOCTL_FLAGS_ISSUE_GLOBAL_EVENT	2

typedef int (*ioctl_fn)(struct file *filp, struct dm_ioctl *param,
			size_t param_size);

static const struct {
	int cmd;
	int flags;
	ioctl_fn fn;
} ioctls[] = {
	{DM_VERSION_CMD, 0, NULL},
	{DM_REMOVE_ALL_CMD, IOCTL_FLAGS_NO_PARAMS | IOCTL_FLAGS_ISSUE_GLOBAL_EVENT, remove_all},
	{DM_LIST_DEVICES_CMD, 0, list_devices},
	{DM_DEV_CREATE_CMD, IOCTL_FLAGS_NO_PARAMS | IOCTL_FLAGS_ISSUE_GLOBAL_EVENT, dev_create},
	{DM_DEV_REMOVE_CMD, IOCTL_FLAGS_NO_PARAMS | IOCTL_FLAGS_ISSUE_GLOBAL_EVENT, dev_remove},
	{DM_DEV_RENAME_CMD, IOCTL_FLAGS_ISSUE_GLOBAL_EVENT, dev_rename},
	{DM_DEV_SUSPEND_CMD, IOCTL_FLAGS_NO_PARAMS, dev_suspend},
	{DM_DEV_STATUS_CMD, IOCTL_FLAGS_NO_PARAMS, dev_status},
	{DM_DEV_WAIT_CMD, 0, dev_wait},
	{DM_TABLE_LOAD_CMD, 0, table_load},
	{DM_TABLE_CLEAR_CMD, IOCTL_FLAGS_NO_PARAMS, table_clear},
	{DM_TABLE_DEPS_CMD, 0, table_deps},
	{DM_TABLE_STATUS_CMD, 0, table_status},
	{DM_LIST_VERSIONS_CMD, 0, list_versions},
	{DM_TARGET_MSG_CMD, 0, target_message},
	{DM_DEV_SET_GEOMETRY_CMD, 0, dev_set_geometry},
	{DM_DEV_ARM_POLL_CMD, IOCTL_FLAGS_NO_PARAMS, dev_arm_poll},
	{DM_GET_TARGET_VERSION_CMD, 0, get_target_version},
};

static ioctl_fn lookup_ioctl(unsigned int cmd, int *flags)
{
	if (cmd >= ARRAY_SIZE(ioctls))
		return NULL;
	cmd = array_index_nospec(cmd, ARRAY_SIZE(ioctls));
	*flags = ioctls[cmd].flags;
	return ioctls[cmd].fn;
}

/* Writes our version back whether or not the caller's is acceptable. */
static int check_ioctl_version(unsigned int cmd, struct dm_ioctl __user *user)
{
	u32 version[3];
	int r = 0;

	if (copy_from_user(version, user->version, sizeof(version)))
		return -EFAULT;

	if (version[0] != DM_VERSION_MAJOR || version[1] > DM_VERSION_MINOR) {
		DMERR("ioctl interface mismatch: kernel(%u.%u.%u), user(%u.%u.%u), cmd(%d)",
		      DM_VERSION_MAJOR, DM_VERSION_MINOR, DM_VERSION_PATCHLEVEL,
		      version[0], version[1], version[2], cmd);
		r = -EINVAL;
	}

	version[0] = DM_VERSION_MAJOR;
	version[1] = DM_VERSION_MINOR;
	version[2] = DM_VERSION_PATCHLEVEL;
	if (copy_to_user(user->version, version, sizeof(version)))
		return -EFAULT;
	return r;
}

#define DM_PARAMS_MALLOC	1
#define DM_WIPE_BUFFER		2

static void free_params(struct dm_ioctl *param, size_t param_size,
			int param_flags)
{
	if (param_flags & DM_WIPE_BUFFER)
		memzero_explicit(param, param_size);
	if (param_flags & DM_PARAMS_MALLOC)
		kvfree(param);
}

static int copy_params(struct dm_ioctl __user *user,
		       struct dm_ioctl *param_kernel, int ioctl_flags,
		       struct dm_ioctl **param, int *param_flags)
{
	const size_t minimum = offsetof(struct dm_ioctl, data);
	struct dm_ioctl *dmi;
	bool secure;
	unsigned int noio_flag;

	if (copy_from_user(param_kernel, user, minimum))
		return -EFAULT;
	if (param_kernel->data_size < minimum ||
	    param_kernel->data_size > DM_PARAM_MAX_SIZE) {
		DMERR("Invalid data size in the ioctl structure: %u",
		      param_kernel->data_size);
		return -EINVAL;
	}

	secure = param_kernel->flags & DM_SECURE_DATA_FLAG;
	*param_flags = secure ? DM_WIPE_BUFFER : 0;

	if (ioctl_flags & IOCTL_FLAGS_NO_PARAMS) {
		dmi = param_kernel;
		dmi->data_size = minimum;
		goto copied;
	}

	/* Callers may be swapping to us; do not recurse into I/O. */
	noio_flag = memalloc_noio_save();
	dmi = kvmalloc(param_kernel->data_size, GFP_KERNEL | __GFP_HIGH);
	memalloc_noio_restore(noio_flag);
	if (!dmi) {
		if (secure && clear_user(user, param_kernel->data_size))
			return -EFAULT;
		return -ENOMEM;
	}
	*param_flags |= DM_PARAMS_MALLOC;

	memcpy(dmi, param_kernel, minimum);
	if (copy_from_user(&dmi->data, (char __user *)user + minimum,
			   param_kernel->data_size - minimum))
		goto bad;
copied:
	if (secure && clear_user(user, param_kernel->data_size))
		goto bad;
	*param = dmi;
	return 0;
bad:
	free_params(dmi, param_kernel->data_size, *param_flags);
	return -EFAULT;
}

static int validate_params(unsigned int cmd, struct dm_ioctl *param)
{
	param->flags &= ~(DM_BUFFER_FULL_FLAG | DM_UEVENT_GENERATED_FLAG |
			  DM_SECURE_DATA_FLAG | DM_DATA_OUT_FLAG);

	if (cmd == DM_REMOVE_ALL_CMD || cmd == DM_LIST_DEVICES_CMD ||
	    cmd == DM_LIST_VERSIONS_CMD)
		return 0;

	if (cmd == DM_DEV_CREATE_CMD) {
		if (!*param->name) {
			DMERR("name not supplied when creating device");
			return -EINVAL;
		}
	} else if (*param->uuid && *param->name) {
		DMERR("only supply one of name or uuid, cmd(%u)", cmd);
		return -EINVAL;
	}

	param->name[DM_NAME_LEN - 1] = '\0';
	param->uuid[DM_UUID_LEN - 1] = '\0';
	return 0;
}

static int ctl_ioctl(struct file *file, unsigned int command,
		     struct dm_ioctl __user *user)
{
	struct dm_ioctl param_kernel, *param;
	int ioctl_flags, param_flags, r;
	unsigned int cmd;
	size_t input_param_size;
	ioctl_fn fn;

	if (!capable(CAP_SYS_ADMIN))
		return -EACCES;
	if (_IOC_TYPE(command) != DM_IOCTL)
		return -ENOTTY;

	cmd = _IOC_NR(command);
	r = check_ioctl_version(cmd, user);
	if (r)
		return r;
	if (cmd == DM_VERSION_CMD)
		return 0;

	fn = lookup_ioctl(cmd, &ioctl_flags);
	if (!fn) {
		DMERR("dm_ctl_ioctl: unknown command 0x%x", command);
		return -ENOTTY;
	}

	r = copy_params(user, &param_kernel, ioctl_flags, &param, &param_flags);
	if (r)
		return r;

	input_param_size = param->data_size;
	r = validate_params(cmd, param);
	if (r)
		goto out;

	param->data_size = offsetof(struct dm_ioctl, data);
	r = fn(file, param, input_param_size);

	if (unlikely(param->flags & DM_BUFFER_FULL_FLAG) &&
	    unlikely(ioctl_flags & IOCTL_FLAGS_NO_PARAMS))
		DMERR("ioctl %d tried to output some data but has IOCTL_FLAGS_NO_PARAMS set",
		      cmd);

	if (!r && (ioctl_flags & IOCTL_FLAGS_ISSUE_GLOBAL_EVENT))
		dm_issue_global_event();

	if (!r && param->data_size &&
	    copy_to_user(user, param, param->data_size))
		r = -EFAULT;
out:
	free_params(param, input_param_size, param_flags);
	return r;
}

/*
 * dm-init's way in: one command on a kernel buffer (data_size is its
 * size), checked and run as the ioctl would run it.
 */
int dm_ioctl_kernel(unsigned int cmd, struct dm_ioctl *param)
{
	size_t size = param->data_size;
	int ioctl_flags, r;
	ioctl_fn fn;

	fn = lookup_ioctl(cmd, &ioctl_flags);
	if (!fn || size < sizeof(*param))
		return -EINVAL;
	r = validate_params(cmd, param);
	if (r)
		return r;
	param->data_size = offsetof(struct dm_ioctl, data);
	r = fn(NULL, param, size);
	if (!r && (ioctl_flags & IOCTL_FLAGS_ISSUE_GLOBAL_EVENT))
		dm_issue_global_event();
	return r;
}

static long dm_ctl_ioctl(struct file *file, unsigned int command,
			 unsigned long u)
{
	return (long)ctl_ioctl(file, command, (struct dm_ioctl __user *)u);
}

#ifdef CONFIG_COMPAT
static long dm_compat_ctl_ioctl(struct file *file, unsigned int command,
				unsigned long u)
{
	return dm_ctl_ioctl(file, command, (unsigned long)compat_ptr(u));
}
#else
#define dm_compat_ctl_ioctl NULL
#endif

static int dm_open(struct inode *inode, struct file *filp)
{
	struct dm_file *priv;
	int r;

	r = nonseekable_open(inode, filp);
	if (unlikely(r))
		return r;
	priv = kzalloc(sizeof(*priv), GFP_KERNEL);
	if (!priv)
		return -ENOMEM;
	priv->global_event_nr = dm_get_global_event_nr();
	filp->private_data = priv;
	return 0;
}

static int dm_release(struct inode *inode, struct file *filp)
{
	kfree(filp->private_data);
	return 0;
}

static __poll_t dm_poll(struct file *filp, poll_table *wait)
{
	struct dm_file *priv = filp->private_data;
	__poll_t mask = 0;

	poll_wait(filp, &dm_global_eventq, wait);
	if ((int)(dm_get_global_event_nr() - priv->global_event_nr) > 0)
		mask |= EPOLLIN;
	return mask;
}

static const struct file_operations dm_ctl_fops = {
	.open = dm_open,
	.release = dm_release,
	.poll = dm_poll,
	.unlocked_ioctl = dm_ctl_ioctl,
	.compat_ioctl = dm_compat_ctl_ioctl,
	.owner = THIS_MODULE,
	.llseek = noop_llseek,
};

static struct miscdevice dm_misc = {
	.minor = MAPPER_CTRL_MINOR,
	.name = DM_NAME,
	.nodename = DM_DIR "/" DM_CONTROL_NODE,
	.fops = &dm_ctl_fops,
};

int dm_interface_init(void)
{
	int r;

	r = misc_register(&dm_misc);
	if (r) {
		DMERR("misc_register failed for control device");
		return r;
	}
	DMINFO("%d.%d.%d%s initialised: %s", DM_VERSION_MAJOR,
	       DM_VERSION_MINOR, DM_VERSION_PATCHLEVEL, DM_VERSION_EXTRA,
	       DM_DRIVER_EMAIL);
	return 0;
}

void dm_interface_exit(void)
{
	misc_deregister(&dm_misc);
	dm_hash_remove_all(false, false, false);
}
