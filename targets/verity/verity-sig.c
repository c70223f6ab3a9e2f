// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-verity root hash signature: the table names a "user" key whose payload
 * is a PKCS#7 signature of the root digest's hex string; it must verify
 * against the kernel's trusted (builtin or secondary) keyrings.
 */

#include <linux/module.h>
#include <linux/slab.h>
#include <linux/key.h>
#include <linux/verification.h>
#include <keys/user-type.h>
#include "verity.h"

#define VERITY_SIG_ERR(s) "DM Verity Sig Verification " s

static bool require_signatures;
module_param(require_signatures, bool, 0444);
MODULE_PARM_DESC(require_signatures, "Verify the roothash of dm-verity hash tree");

bool verity_is_sig_opt(const char *name)
{
	return !strcasecmp(name, "root_hash_sig_key_desc");
}

static int sig_from_key(const char *desc, struct verity_sig *sig)
{
	const struct user_key_payload *payload;
	struct key *key;
	int r = 0;

	key = request_key(&key_type_user, desc, NULL);
	if (IS_ERR(key))
		return PTR_ERR(key);

	down_read(&key->sem);
	payload = user_key_payload_locked(key);
	if (!payload) {
		r = -EKEYREVOKED;
		goto out;
	}
	sig->data = kmemdup(payload->data, payload->datalen, GFP_KERNEL);
	if (!sig->data) {
		r = -ENOMEM;
		goto out;
	}
	sig->size = payload->datalen;
out:
	up_read(&key->sem);
	key_put(key);
	return r;
}

int verity_sig_parse_opt(struct dm_verity *v, struct dm_arg_set *as,
			 unsigned int *argc, struct verity_sig *sig)
{
	struct dm_target *ti = v->ti;
	const char *desc;
	int r;

	if (!*argc) {
		ti->error = VERITY_SIG_ERR("Signature key not specified");
		return -EINVAL;
	}
	desc = dm_shift_arg(as);
	(*argc)--;

	r = sig_from_key(desc, sig);
	if (r < 0)
		ti->error = VERITY_SIG_ERR("Invalid key specified");

	kfree(v->sig_key_desc);
	v->sig_key_desc = kstrdup(desc, GFP_KERNEL);
	if (!v->sig_key_desc)
		return -ENOMEM;
	return r;
}

int verity_sig_check(const char *root_hex, struct verity_sig *sig)
{
	if (!sig->data || !sig->size)
		return require_signatures ? -EPERM : 0;

	return verify_pkcs7_signature(root_hex, strlen(root_hex), sig->data, sig->size,
				      VERIFY_USE_SECONDARY_KEYRING,
				      VERIFYING_UNSPECIFIED_SIGNATURE, NULL, NULL);
}

void verity_sig_free(struct verity_sig *sig)
{
	kfree(sig->data);
	sig->data = NULL;
	sig->size = 0;
}
