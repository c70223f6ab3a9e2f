// SPDX-License-Identifier: GPL-2.0-only
/*
 * IMA critical-data records for mapped devices.
 *
 * A table load is measured in clear text (device metadata plus every
 * target's STATUSTYPE_IMA string); later state changes (resume, remove,
 * table clear, rename) only carry the device metadata and the sha256 of the
 * load records, so a verifier can tie them to the table they refer to.
 * The record text, event names and buffer limits follow Debian's stock
 * dm-mod so that attestation services see identical logs; see
 * Documentation/dm-ima.md.
 */
#include "dm-core.h"

#include <linux/ima.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/stringify.h>
#include <crypto/sha2.h>

#define DM_MSG_PREFIX "ima"

/* Record size limits: a longer record is cut, as stock cuts it. */
#define IMA_LOAD_RECORD_MAX	4096
#define IMA_DEVICE_RECORD_MAX	1024
#define IMA_TARGET_META_MAX	128
#define IMA_TARGET_DATA_MAX	2048

#define IMA_VERSION_PREFIX "dm_version="		\
	__stringify(DM_VERSION_MAJOR) "."		\
	__stringify(DM_VERSION_MINOR) "."		\
	__stringify(DM_VERSION_PATCHLEVEL) ";"

struct ima_record {
	char *buf;
	size_t len;
	size_t size;
};

static bool record_alloc(struct ima_record *rec, size_t size)
{
	rec->buf = kzalloc(size, GFP_KERNEL);
	rec->len = 0;
	rec->size = size;
	return rec->buf != NULL;
}

static __printf(2, 3) void record_add(struct ima_record *rec,
				      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rec->len += vscnprintf(rec->buf + rec->len, rec->size - rec->len,
			       fmt, ap);
	va_end(ap);
}

static void record_measure(const char *event, struct ima_record *rec)
{
	ima_measure_critical_data(DM_NAME, event, rec->buf, rec->len,
				  false, NULL, 0);
}

/*
 * Records are key=value lists split by ',' and ';', so a name or uuid that
 * contains a separator (or the escape itself) gets a backslash before it.
 */
static char *escape_field(const char *in)
{
	char *out = kmalloc(strlen(in) * 2 + 1, GFP_KERNEL);
	char *p = out;

	if (!out)
		return NULL;
	for (; *in; in++) {
		if (strchr("\\;=,", *in))
			*p++ = '\\';
		*p++ = *in;
	}
	*p = '\0';
	return out;
}

/* Fails once the device has left the name index (during remove). */
static int get_name_uuid(struct mapped_device *md, char **name, char **uuid)
{
	char *raw_name, *raw_uuid;
	int r = -ENOMEM;

	*name = NULL;
	*uuid = NULL;
	raw_name = kzalloc(DM_NAME_LEN, GFP_KERNEL);
	raw_uuid = kzalloc(DM_UUID_LEN, GFP_KERNEL);
	if (!raw_name || !raw_uuid)
		goto out;
	r = dm_copy_name_and_uuid(md, raw_name, raw_uuid);
	if (r)
		goto out;
	*name = escape_field(raw_name);
	*uuid = escape_field(raw_uuid);
	if (!*name || !*uuid) {
		kfree(*name);
		kfree(*uuid);
		*name = NULL;
		*uuid = NULL;
		r = -ENOMEM;
	}
out:
	kfree(raw_name);
	kfree(raw_uuid);
	return r;
}

static char *device_metadata(struct mapped_device *md,
			     unsigned int num_targets)
{
	char *name, *uuid, *meta;

	if (get_name_uuid(md, &name, &uuid))
		return NULL;
	meta = kzalloc(IMA_DEVICE_RECORD_MAX, GFP_KERNEL);
	if (meta)
		scnprintf(meta, IMA_DEVICE_RECORD_MAX,
			  "name=%s,uuid=%s,major=%d,minor=%d,minor_count=%d,num_targets=%u;",
			  name, uuid, md->disk->major, md->disk->first_minor,
			  md->disk->minors, num_targets);
	kfree(name);
	kfree(uuid);
	return meta;
}

static void table_state_free(struct dm_ima_table_state *ts)
{
	kfree(ts->device_metadata);
	kfree(ts->hash);
	memset(ts, 0, sizeof(*ts));
}

static unsigned long long capacity_of(struct mapped_device *md)
{
	return (unsigned long long)get_capacity(md->disk);
}

void dm_ima_init(struct mapped_device *md)
{
	mutex_init(&md->ima.lock);
}

void dm_ima_exit(struct mapped_device *md)
{
	table_state_free(&md->ima.active);
	table_state_free(&md->ima.inactive);
	mutex_destroy(&md->ima.lock);
}

void dm_ima_measure_table_load(struct dm_table *t)
{
	struct mapped_device *md = t->md;
	u8 digest[SHA256_DIGEST_SIZE];
	struct sha256_state sctx;
	struct ima_record rec = { };
	char *meta, *tmeta = NULL, *tdata = NULL, *hash;
	bool split_at_this_target = false;
	size_t head_len, tmeta_len, tdata_len;
	unsigned int i;

	mutex_lock(&md->ima.lock);
	meta = device_metadata(md, t->num_targets);
	if (!meta)
		goto out;
	tmeta = kzalloc(IMA_TARGET_META_MAX, GFP_KERNEL);
	/*
	 * One zeroed buffer for every target, never cleared in between: a
	 * target whose status ignores STATUSTYPE_IMA repeats the previous
	 * target's string, exactly as in stock records.
	 */
	tdata = kzalloc(IMA_TARGET_DATA_MAX, GFP_KERNEL);
	if (!tmeta || !tdata || !record_alloc(&rec, IMA_LOAD_RECORD_MAX))
		goto out_meta;

	record_add(&rec, "%s%s", IMA_VERSION_PREFIX, meta);
	head_len = rec.len;
	sha256_init(&sctx);

	for (i = 0; i < t->num_targets; i++) {
		struct dm_target *ti = dm_table_get_target(t, i);

		tmeta_len = scnprintf(tmeta, IMA_TARGET_META_MAX,
				      "target_index=%u,target_begin=%llu,target_len=%llu,",
				      i, (unsigned long long)ti->begin,
				      (unsigned long long)ti->len);
		if (ti->type->status)
			ti->type->status(ti, STATUSTYPE_IMA, 0, tdata,
					 IMA_TARGET_DATA_MAX);
		else
			tdata[0] = '\0';
		tdata_len = strnlen(tdata, IMA_TARGET_DATA_MAX - 1);

		/* A full record goes out; the rest follows the same header. */
		split_at_this_target = false;
		if (rec.len + tmeta_len + tdata_len >= IMA_LOAD_RECORD_MAX) {
			record_measure("dm_table_load", &rec);
			sha256_update(&sctx, rec.buf, rec.len);
			rec.len = head_len;
			split_at_this_target = true;
		}
		memcpy(rec.buf + rec.len, tmeta, tmeta_len);
		rec.len += tmeta_len;
		memcpy(rec.buf + rec.len, tdata, tdata_len);
		rec.len += tdata_len;
	}

	/*
	 * Stock never sends (nor hashes) the last record when its last
	 * target is the one that started it; the table hash follows suit.
	 */
	if (!split_at_this_target) {
		record_measure("dm_table_load", &rec);
		sha256_update(&sctx, rec.buf, rec.len);
	}
	sha256_final(&sctx, digest);

	hash = kasprintf(GFP_KERNEL, "sha256:%*phN", SHA256_DIGEST_SIZE, digest);
	if (!hash)
		goto out_meta;
	table_state_free(&md->ima.inactive);
	md->ima.inactive.device_metadata = meta;
	md->ima.inactive.hash = hash;
	md->ima.inactive.num_targets = t->num_targets;
	meta = NULL;
out_meta:
	kfree(meta);
out:
	kfree(rec.buf);
	kfree(tmeta);
	kfree(tdata);
	mutex_unlock(&md->ima.lock);
}

void dm_ima_measure_resume(struct mapped_device *md, bool swapped)
{
	struct dm_ima_table_state *active = &md->ima.active;
	struct ima_record rec;
	unsigned int noio = memalloc_noio_save();
	char *name, *uuid;

	mutex_lock(&md->ima.lock);
	if (swapped) {
		table_state_free(active);
		*active = md->ima.inactive;
		memset(&md->ima.inactive, 0, sizeof(md->ima.inactive));
	}
	if (!record_alloc(&rec, IMA_DEVICE_RECORD_MAX))
		goto out;

	record_add(&rec, "%s", IMA_VERSION_PREFIX);
	if (active->device_metadata)
		record_add(&rec, "%s", active->device_metadata);
	if (active->hash)
		record_add(&rec, "active_table_hash=%s;", active->hash);
	if (!active->device_metadata && !active->hash) {
		if (get_name_uuid(md, &name, &uuid))
			goto out_rec;
		rec.len = 0;
		record_add(&rec, "%sname=%s,uuid=%s;device_resume=no_data;",
			   IMA_VERSION_PREFIX, name, uuid);
		kfree(name);
		kfree(uuid);
	}
	record_add(&rec, "current_device_capacity=%llu;", capacity_of(md));
	record_measure("dm_device_resume", &rec);
out_rec:
	kfree(rec.buf);
out:
	mutex_unlock(&md->ima.lock);
	memalloc_noio_restore(noio);
}

/*
 * Called once the device has left the name index, so a device that never
 * had a table leaves no record at all (its name can no longer be read),
 * as with stock.
 */
void dm_ima_measure_remove(struct mapped_device *md, bool remove_all)
{
	struct dm_ima_table_state *active = &md->ima.active;
	struct dm_ima_table_state *inactive = &md->ima.inactive;
	unsigned int noio = memalloc_noio_save();
	struct ima_record rec;
	char *name, *uuid;

	mutex_lock(&md->ima.lock);
	if (!record_alloc(&rec, IMA_DEVICE_RECORD_MAX * 2))
		goto out;

	record_add(&rec, "%s", IMA_VERSION_PREFIX);
	if (active->device_metadata)
		record_add(&rec, "device_active_metadata=%s",
			   active->device_metadata);
	if (inactive->device_metadata)
		record_add(&rec, "device_inactive_metadata=%s",
			   inactive->device_metadata);
	if (active->hash)
		record_add(&rec, "active_table_hash=%s,", active->hash);
	if (inactive->hash)
		record_add(&rec, "inactive_table_hash=%s,", inactive->hash);
	if (!active->device_metadata && !inactive->device_metadata &&
	    !active->hash && !inactive->hash) {
		if (get_name_uuid(md, &name, &uuid))
			goto out_rec;
		rec.len = 0;
		record_add(&rec, "%sname=%s,uuid=%s;device_remove=no_data;",
			   IMA_VERSION_PREFIX, name, uuid);
		kfree(name);
		kfree(uuid);
	}
	record_add(&rec, "remove_all=%c;current_device_capacity=%llu;",
		   remove_all ? 'y' : 'n', capacity_of(md));
	record_measure("dm_device_remove", &rec);
out_rec:
	kfree(rec.buf);
out:
	table_state_free(active);
	table_state_free(inactive);
	mutex_unlock(&md->ima.lock);
	memalloc_noio_restore(noio);
}

void dm_ima_measure_table_clear(struct mapped_device *md, bool had_inactive)
{
	struct dm_ima_table_state *active = &md->ima.active;
	struct dm_ima_table_state *inactive = &md->ima.inactive;
	unsigned int noio = memalloc_noio_save();
	struct ima_record rec;
	char *name, *uuid;
	char *meta_copy = NULL, *hash_copy = NULL;

	mutex_lock(&md->ima.lock);
	if (!record_alloc(&rec, IMA_DEVICE_RECORD_MAX))
		goto out;

	record_add(&rec, "%s", IMA_VERSION_PREFIX);
	if (inactive->device_metadata && inactive->hash) {
		record_add(&rec, "%sinactive_table_hash=%s;",
			   inactive->device_metadata, inactive->hash);
	} else {
		if (get_name_uuid(md, &name, &uuid))
			goto out_rec;
		rec.len = 0;
		record_add(&rec, "%sname=%s,uuid=%s;table_clear=no_data;",
			   IMA_VERSION_PREFIX, name, uuid);
		kfree(name);
		kfree(uuid);
	}
	record_add(&rec, "current_device_capacity=%llu;", capacity_of(md));
	record_measure("dm_table_clear", &rec);

	/*
	 * With the staged table gone, stock reports the live table's data as
	 * the inactive one from here on (e.g. in the remove record).
	 */
	if (had_inactive) {
		if (active->device_metadata)
			meta_copy = kstrdup(active->device_metadata, GFP_KERNEL);
		if (active->hash)
			hash_copy = kstrdup(active->hash, GFP_KERNEL);
		table_state_free(inactive);
		inactive->device_metadata = meta_copy;
		inactive->hash = hash_copy;
		inactive->num_targets = meta_copy ? active->num_targets : 0;
	}
out_rec:
	kfree(rec.buf);
out:
	mutex_unlock(&md->ima.lock);
	memalloc_noio_restore(noio);
}

/* Called with the new name or uuid already in place. */
void dm_ima_measure_rename(struct mapped_device *md)
{
	struct dm_ima_table_state *active = &md->ima.active;
	unsigned int noio = memalloc_noio_save();
	struct ima_record rec;
	char *new_meta, *name, *uuid;

	mutex_lock(&md->ima.lock);
	new_meta = device_metadata(md, active->num_targets);
	if (!new_meta)
		goto out;
	if (get_name_uuid(md, &name, &uuid))
		goto out_meta;
	if (!record_alloc(&rec, IMA_DEVICE_RECORD_MAX * 2))
		goto out_names;

	/* Stock prints a missing live table's metadata as "(null)". */
	record_add(&rec, "%s%snew_name=%s,new_uuid=%s;", IMA_VERSION_PREFIX,
		   active->device_metadata ?: "(null)", name, uuid);
	record_add(&rec, "current_device_capacity=%llu;", capacity_of(md));
	record_measure("dm_device_rename", &rec);
	kfree(rec.buf);

	kfree(active->device_metadata);
	active->device_metadata = new_meta;
	new_meta = NULL;
out_names:
	kfree(name);
	kfree(uuid);
out_meta:
	kfree(new_meta);
out:
	mutex_unlock(&md->ima.lock);
	memalloc_noio_restore(noio);
}
