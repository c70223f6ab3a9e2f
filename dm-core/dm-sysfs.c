// SPDX-License-Identifier: GPL-2.0-only
/*
 * /sys/block/dm-N/dm/: name, uuid, suspended and two compatibility
 * attributes. udev reads these when it handles our change events.
 */
#include "dm-core.h"

#include <linux/sysfs.h>

struct dm_sysfs_attr {
	struct attribute attr;
	ssize_t (*show)(struct mapped_device *md, char *buf);
	ssize_t (*store)(struct mapped_device *md, const char *buf, size_t n);
};

static ssize_t dm_attr_show(struct kobject *kobj, struct attribute *attr,
			    char *page)
{
	struct dm_sysfs_attr *a = container_of(attr, struct dm_sysfs_attr, attr);
	struct mapped_device *md;
	ssize_t r;

	if (!a->show)
		return -EIO;
	md = dm_get_from_kobject(kobj);
	if (!md)
		return -EINVAL;
	r = a->show(md, page);
	dm_put(md);
	return r;
}

static ssize_t dm_attr_store(struct kobject *kobj, struct attribute *attr,
			     const char *page, size_t count)
{
	struct dm_sysfs_attr *a = container_of(attr, struct dm_sysfs_attr, attr);
	struct mapped_device *md;
	ssize_t r;

	if (!a->store)
		return -EIO;
	md = dm_get_from_kobject(kobj);
	if (!md)
		return -EINVAL;
	r = a->store(md, page, count);
	dm_put(md);
	return r;
}

static ssize_t name_show(struct mapped_device *md, char *buf)
{
	if (dm_copy_name_and_uuid(md, buf, NULL))
		return -EIO;
	strcat(buf, "\n");
	return strlen(buf);
}

static ssize_t uuid_show(struct mapped_device *md, char *buf)
{
	if (dm_copy_name_and_uuid(md, NULL, buf))
		return -EIO;
	strcat(buf, "\n");
	return strlen(buf);
}

static ssize_t suspended_show(struct mapped_device *md, char *buf)
{
	return sysfs_emit(buf, "%d\n", dm_suspended_md(md));
}

static ssize_t use_blk_mq_show(struct mapped_device *md, char *buf)
{
	return sysfs_emit(buf, "%d\n", 1);
}

static ssize_t deadline_show(struct mapped_device *md, char *buf)
{
	return sysfs_emit(buf, "%d\n", 0);
}

static ssize_t deadline_store(struct mapped_device *md, const char *buf,
			      size_t count)
{
	return count;	/* kept for compatibility; has no effect */
}

#define DM_ATTR(_name, _mode, _show, _store) \
	static struct dm_sysfs_attr dm_attr_##_name = \
		__ATTR(_name, _mode, _show, _store)

DM_ATTR(name, 0444, name_show, NULL);
DM_ATTR(uuid, 0444, uuid_show, NULL);
DM_ATTR(suspended, 0444, suspended_show, NULL);
DM_ATTR(use_blk_mq, 0444, use_blk_mq_show, NULL);
DM_ATTR(rq_based_seq_io_merge_deadline, 0644, deadline_show, deadline_store);

static struct attribute *dm_attrs[] = {
	&dm_attr_name.attr,
	&dm_attr_uuid.attr,
	&dm_attr_suspended.attr,
	&dm_attr_use_blk_mq.attr,
	&dm_attr_rq_based_seq_io_merge_deadline.attr,
	NULL,
};
ATTRIBUTE_GROUPS(dm);

static const struct sysfs_ops dm_sysfs_ops = {
	.show = dm_attr_show,
	.store = dm_attr_store,
};

static void dm_sysfs_release(struct kobject *kobj)
{
	struct dm_sysfs_holder *h = container_of(kobj, struct dm_sysfs_holder,
						 kobj);

	complete(&h->done);
}

static struct kobj_type dm_ktype = {
	.sysfs_ops = &dm_sysfs_ops,
	.default_groups = dm_groups,
	.release = dm_sysfs_release,
};

int dm_sysfs_init(struct mapped_device *md)
{
	int r;

	r = kobject_init_and_add(&md->kobj_holder.kobj, &dm_ktype,
				 &disk_to_dev(dm_disk(md))->kobj, "%s", "dm");
	if (r)
		kobject_put(&md->kobj_holder.kobj);
	return r;
}

void dm_sysfs_exit(struct mapped_device *md)
{
	kobject_put(&md->kobj_holder.kobj);
	wait_for_completion(&md->kobj_holder.done);
}
