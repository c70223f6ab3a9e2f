// SPDX-License-Identifier: GPL-2.0-only
/*
 * Bitsets: arrays of LE64 words, bit n being bit n % 64 of word n / 64.
 */
#include "pd-internal.h"

void dm_pd_bitset_info_init(struct dm_pd_bitset_info *info,
			    struct dm_pd_tm *tm)
{
	struct dm_pd_btree_value_type vt = { .size = sizeof(__le64) };

	dm_pd_array_info_init(&info->array_info, tm, &vt);
}
EXPORT_SYMBOL_GPL(dm_pd_bitset_info_init);

int dm_pd_bitset_empty(struct dm_pd_bitset_info *info, u64 *root)
{
	return dm_pd_array_empty(&info->array_info, root);
}
EXPORT_SYMBOL_GPL(dm_pd_bitset_empty);

int dm_pd_bitset_del(struct dm_pd_bitset_info *info, u64 root)
{
	return dm_pd_array_del(&info->array_info, root);
}
EXPORT_SYMBOL_GPL(dm_pd_bitset_del);

static int get_word(struct dm_pd_bitset_info *info, u64 root, u32 w, u64 *word)
{
	__le64 v;
	int r = dm_pd_array_get_value(&info->array_info, root, w, &v);

	if (!r)
		*word = le64_to_cpu(v);
	return r;
}

static int put_word(struct dm_pd_bitset_info *info, u64 root, u32 w, u64 word,
		    u64 *new_root)
{
	__le64 v = cpu_to_le64(word);

	return dm_pd_array_set_value(&info->array_info, root, w, &v, new_root);
}

int dm_pd_bitset_resize(struct dm_pd_bitset_info *info, u64 root,
			u32 old_nr_bits, u32 new_nr_bits, bool default_value,
			u64 *new_root)
{
	u32 old_words = DIV_ROUND_UP(old_nr_bits, 64);
	u32 new_words = DIV_ROUND_UP(new_nr_bits, 64);
	__le64 fill = default_value ? cpu_to_le64(~0ULL) : 0;
	int r;

	*new_root = root;
	/* Bits past the old end in the old last word take the default. */
	if (new_nr_bits > old_nr_bits && old_nr_bits % 64) {
		u64 word, mask = ~0ULL << (old_nr_bits % 64);

		r = get_word(info, root, old_words - 1, &word);
		if (r)
			return r;
		word = default_value ? word | mask : word & ~mask;
		r = put_word(info, root, old_words - 1, word, new_root);
		if (r)
			return r;
	}
	return dm_pd_array_resize(&info->array_info, *new_root, old_words,
				  new_words, &fill, new_root);
}
EXPORT_SYMBOL_GPL(dm_pd_bitset_resize);

static int update_bit(struct dm_pd_bitset_info *info, u64 root, u32 bit,
		      bool set, u64 *new_root)
{
	u64 word;
	int r = get_word(info, root, bit / 64, &word);

	if (r)
		return r;
	if (set)
		word |= 1ULL << (bit % 64);
	else
		word &= ~(1ULL << (bit % 64));
	return put_word(info, root, bit / 64, word, new_root);
}

int dm_pd_bitset_set_bit(struct dm_pd_bitset_info *info, u64 root, u32 bit,
			 u64 *new_root)
{
	return update_bit(info, root, bit, true, new_root);
}
EXPORT_SYMBOL_GPL(dm_pd_bitset_set_bit);

int dm_pd_bitset_clear_bit(struct dm_pd_bitset_info *info, u64 root, u32 bit,
			   u64 *new_root)
{
	return update_bit(info, root, bit, false, new_root);
}
EXPORT_SYMBOL_GPL(dm_pd_bitset_clear_bit);

int dm_pd_bitset_test_bit(struct dm_pd_bitset_info *info, u64 root, u32 bit,
			  bool *result)
{
	u64 word;
	int r = get_word(info, root, bit / 64, &word);

	if (!r)
		*result = word & (1ULL << (bit % 64));
	return r;
}
EXPORT_SYMBOL_GPL(dm_pd_bitset_test_bit);
