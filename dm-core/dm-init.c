// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-init: mapped devices described on the kernel command line.
 *
 *   dm_mod.create=<name>,<uuid>,<minor>,<flags>,<table>[,<table>...][;<dev>...]
 *   dm_mod.waitfor=<path>[,<path>...]
 *
 * Stock builds this only with dm-mod built in. Ours is a module, so these are
 * module parameters: modprobe hands over the kernel command line's
 * dm_mod.* options, and the devices appear when dm-mod loads, e.g. from an
 * initramfs. The work runs after the module's init has returned, because
 * tables may need target modules that link against dm-mod.
 */
#include <linux/ctype.h>
#include <linux/delay.h>
#include <linux/device-mapper.h>
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "dm-core.h"

#define DM_MSG_PREFIX "init"
#define DM_INIT_MAX_DEVICES	256
#define DM_INIT_MAX_TARGETS	256
#define DM_INIT_MAX_STR		4096

static char *create;
module_param(create, charp, 0);
MODULE_PARM_DESC(create, "Create mapped devices when dm-mod loads");

static char *waitfor[DM_INIT_MAX_DEVICES];
module_param_array(waitfor, charp, NULL, 0);
MODULE_PARM_DESC(waitfor, "Devices to wait for before creating mapped devices");

/* The only targets a boot-time table may use, as stock. */
static const char *const allowed_targets[] = {
	"crypt", "delay", "linear", "snapshot-origin", "striped", "verity",
};

struct init_target {
	sector_t start;
	sector_t len;
	char *type;
	char *params;
};

struct init_device {
	struct list_head list;
	char *name;
	char *uuid;
	bool has_minor;
	unsigned int minor;
	bool ro;
	unsigned int nr_targets;
	struct init_target targets[DM_INIT_MAX_TARGETS];
};

/*
 * Cuts @*s at the first @sep and returns the field with surrounding blanks
 * removed; *s moves past the separator, or becomes NULL at the end.
 */
static char *next_field(char **s, char sep)
{
	char *field = *s, *end;

	if (!field)
		return NULL;
	end = strchr(field, sep);
	if (end) {
		*end = '\0';
		*s = end + 1;
	} else {
		*s = NULL;
	}
	return strim(field);
}

static bool target_allowed(const char *type)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(allowed_targets); i++)
		if (!strcmp(type, allowed_targets[i]))
			return true;
	return false;
}

/* The next blank-separated word of *s, or NULL; *s moves past it. */
static char *next_word(char **s)
{
	char *word = skip_spaces(*s), *end = word;

	if (!*word)
		return NULL;
	while (*end && !isspace(*end))
		end++;
	if (*end)
		*end++ = '\0';
	*s = end;
	return word;
}

/* <start_sector> <num_sectors> <target_type> <target_args> */
static int parse_table(struct init_target *t, char *str)
{
	char *start = next_word(&str);
	char *len = next_word(&str);
	unsigned long long v;

	t->type = next_word(&str);
	t->params = strim(str);
	if (!start || !len || !t->type) {
		DMERR("invalid table: needs <start> <length> <type> <args>");
		return -EINVAL;
	}
	if (kstrtoull(start, 0, &v) || v != (sector_t)v) {
		DMERR("invalid start sector '%s'", start);
		return -EINVAL;
	}
	t->start = v;
	if (kstrtoull(len, 0, &v) || !v || v != (sector_t)v) {
		DMERR("invalid number of sectors '%s'", len);
		return -EINVAL;
	}
	t->len = v;
	if (!target_allowed(t->type)) {
		DMERR("target type '%s' is not allowed at boot", t->type);
		return -EINVAL;
	}
	return 0;
}

/* <name>,<uuid>,<minor>,<flags>,<table>[,<table>...] */
static int parse_device(struct init_device *dev, char *str)
{
	char *minor, *flags, *table;
	int r;

	dev->name = next_field(&str, ',');
	dev->uuid = next_field(&str, ',');
	minor = next_field(&str, ',');
	flags = next_field(&str, ',');
	if (!dev->name || !*dev->name || !minor || !flags || !str) {
		DMERR("invalid device: needs <name>,<uuid>,<minor>,<flags>,<table>");
		return -EINVAL;
	}
	if (strlen(dev->name) >= DM_NAME_LEN || strlen(dev->uuid) >= DM_UUID_LEN) {
		DMERR("device %s: name or uuid too long", dev->name);
		return -EINVAL;
	}
	if (*minor) {
		if (kstrtouint(minor, 0, &dev->minor) ||
		    dev->minor >= (1U << MINORBITS)) {
			DMERR("device %s: invalid minor '%s'", dev->name, minor);
			return -EINVAL;
		}
		dev->has_minor = true;
	}
	if (!strcmp(flags, "ro")) {
		dev->ro = true;
	} else if (strcmp(flags, "rw")) {
		DMERR("device %s: invalid flags '%s' (ro or rw)", dev->name,
		      flags);
		return -EINVAL;
	}
	while ((table = next_field(&str, ','))) {
		if (dev->nr_targets == DM_INIT_MAX_TARGETS) {
			DMERR("device %s: more than %d targets", dev->name,
			      DM_INIT_MAX_TARGETS);
			return -EINVAL;
		}
		r = parse_table(&dev->targets[dev->nr_targets], table);
		if (r)
			return r;
		dev->nr_targets++;
	}
	return 0;
}

static void free_devices(struct list_head *devices)
{
	struct init_device *dev, *tmp;

	list_for_each_entry_safe(dev, tmp, devices, list) {
		list_del(&dev->list);
		kvfree(dev);
	}
}

static int parse_devices(struct list_head *devices, char *str)
{
	unsigned int n = 0;
	char *one;
	int r;

	while ((one = next_field(&str, ';'))) {
		struct init_device *dev;

		if (!*one && !str)
			break;		/* a trailing ';' */
		if (++n > DM_INIT_MAX_DEVICES) {
			DMERR("more than %d devices", DM_INIT_MAX_DEVICES);
			return -EINVAL;
		}
		dev = kvzalloc(sizeof(*dev), GFP_KERNEL);
		if (!dev)
			return -ENOMEM;
		list_add_tail(&dev->list, devices);
		r = parse_device(dev, one);
		if (r)
			return r;
	}
	return n ? 0 : -EINVAL;
}

/* A dm_ioctl buffer naming @dev, with room for @payload bytes. */
static struct dm_ioctl *new_request(struct init_device *dev, size_t payload)
{
	size_t size = sizeof(struct dm_ioctl) + payload;
	struct dm_ioctl *dmi = kvzalloc(size, GFP_KERNEL);

	if (!dmi)
		return NULL;
	dmi->version[0] = DM_VERSION_MAJOR;
	dmi->version[1] = DM_VERSION_MINOR;
	dmi->version[2] = DM_VERSION_PATCHLEVEL;
	dmi->data_size = size;
	dmi->data_start = sizeof(struct dm_ioctl);
	strscpy(dmi->name, dev->name, sizeof(dmi->name));
	return dmi;
}

static int run_request(unsigned int cmd, struct init_device *dev,
		       size_t payload, void (*fill)(struct init_device *dev,
						    struct dm_ioctl *dmi))
{
	struct dm_ioctl *dmi = new_request(dev, payload);
	int r;

	if (!dmi)
		return -ENOMEM;
	if (fill)
		fill(dev, dmi);
	r = dm_ioctl_kernel(cmd, dmi);
	kvfree(dmi);
	return r;
}

static void fill_create(struct init_device *dev, struct dm_ioctl *dmi)
{
	strscpy(dmi->uuid, dev->uuid, sizeof(dmi->uuid));
	if (dev->has_minor) {
		dmi->flags |= DM_PERSISTENT_DEV_FLAG;
		dmi->dev = huge_encode_dev(MKDEV(0, dev->minor));
	}
}

static size_t spec_size(struct init_target *t)
{
	return ALIGN(sizeof(struct dm_target_spec) + strlen(t->params) + 1, 8);
}

static void fill_table(struct init_device *dev, struct dm_ioctl *dmi)
{
	char *p = (char *)dmi + dmi->data_start;
	unsigned int i;

	if (dev->ro)
		dmi->flags |= DM_READONLY_FLAG;
	dmi->target_count = dev->nr_targets;
	for (i = 0; i < dev->nr_targets; i++) {
		struct init_target *t = &dev->targets[i];
		struct dm_target_spec *spec = (void *)p;

		spec->sector_start = t->start;
		spec->length = t->len;
		strscpy(spec->target_type, t->type, sizeof(spec->target_type));
		strcpy((char *)(spec + 1), t->params);
		spec->next = spec_size(t);
		p += spec->next;
	}
}

static int create_device(struct init_device *dev)
{
	size_t table = 0;
	unsigned int i;
	int r;

	for (i = 0; i < dev->nr_targets; i++)
		table += spec_size(&dev->targets[i]);

	r = run_request(DM_DEV_CREATE_CMD, dev, 0, fill_create);
	if (r) {
		DMERR("device %s: create failed (%d)", dev->name, r);
		return r;
	}
	r = run_request(DM_TABLE_LOAD_CMD, dev, table, fill_table);
	if (!r)
		r = run_request(DM_DEV_SUSPEND_CMD, dev, 0, NULL);
	if (r) {
		DMERR("device %s: table load or resume failed (%d)", dev->name,
		      r);
		run_request(DM_DEV_REMOVE_CMD, dev, 0, NULL);
		return r;
	}
	DMINFO("%s is ready", dev->name);
	return 0;
}

/* Set when dm-mod unloads, so that a wait that never ends lets it go. */
static bool stopping;

static int wait_for_devices(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(waitfor) && waitfor[i]; i++) {
		DMINFO("waiting for device %s ...", waitfor[i]);
		while (!dm_get_dev_t(waitfor[i])) {
			if (READ_ONCE(stopping))
				return -EINTR;
			fsleep(5000);
		}
	}
	if (waitfor[0])
		DMINFO("all devices available");
	return 0;
}

static void dm_init_work_fn(struct work_struct *work)
{
	struct init_device *dev;
	LIST_HEAD(devices);
	char *str;
	int r;

	str = kstrndup(create, DM_INIT_MAX_STR, GFP_KERNEL);
	if (!str)
		return;
	r = parse_devices(&devices, str);
	if (r) {
		DMERR("invalid dm_mod.create: no device created");
		goto out;
	}
	wait_for_device_probe();
	if (wait_for_devices())
		goto out;
	wait_for_device_probe();
	list_for_each_entry(dev, &devices, list)
		if (create_device(dev))
			break;
out:
	free_devices(&devices);
	kfree(str);
}

static DECLARE_WORK(dm_init_work, dm_init_work_fn);

int dm_init_devices(void)
{
	if (!create)
		return 0;
	if (strlen(create) >= DM_INIT_MAX_STR) {
		DMERR("dm_mod.create is too long: the limit is %d bytes",
		      DM_INIT_MAX_STR - 1);
		return 0;
	}
	schedule_work(&dm_init_work);
	return 0;
}

void dm_init_devices_exit(void)
{
	WRITE_ONCE(stopping, true);
	flush_work(&dm_init_work);
}
