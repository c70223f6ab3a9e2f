# SPDX-License-Identifier: GPL-2.0-only
# Shared helpers for the VM scripts. Sourced, not run.

log() { echo "[vm] $*" >&2; }
die() { echo "[vm] error: $*" >&2; exit 1; }

# Everything built or downloaded for the VM lives outside the clone.
CACHE=${DM_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dm-vm}

# The 6.1 ABI that Debian's linux-headers-amd64 points at (never hard-coded).
target_kver() {
	if [ -n "${KVER:-}" ]; then echo "$KVER"; return; fi
	local dep
	dep=$(apt-cache depends linux-headers-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-headers-\(.*-amd64\)$/\1/p' | head -n1)
	[ -n "$dep" ] || return 1
	echo "$dep"
}

kernel_dir() { echo "$CACHE/kernel-$1"; }
