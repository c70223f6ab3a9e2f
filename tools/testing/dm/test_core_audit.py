# SPDX-License-Identifier: GPL-2.0-only
"""dm core: audit records (type 1338 AUDIT_DM_CTRL, 1339 AUDIT_DM_EVENT)
that targets write through dm_audit_log_ti/bio, as the kernel log shows
them when no auditd runs. dm-crypt logs its constructor and destructor.

Audit is off in the guest (no audit=1, no auditd): the test switches it on
through the audit netlink socket and off again afterwards. Without auditd,
kauditd prints records under the kernel's printk rate limit (10 per 5 s),
and each dmsetup call also brings its SYSCALL/PATH records: the test raises
the burst while it runs.
"""
import os
import re
import socket
import struct

import pytest

from corehelp import Kmsg
from dmtest import create, fails, has_target, info, remove, run, wait_for

NETLINK_AUDIT = 9
AUDIT_SET = 1001
AUDIT_STATUS_ENABLED = 1
KEY = "0123456789abcdef" * 4


def _audit_enable(on):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
    try:
        s.bind((0, 0))
        status = struct.pack("=9I", AUDIT_STATUS_ENABLED, int(on), 0, 0, 0, 0, 0, 0, 0)
        # NLM_F_REQUEST | NLM_F_ACK
        s.send(struct.pack("=IHHII", 16 + len(status), AUDIT_SET, 0x5, 1, 0) + status)
        ack = s.recv(8192)
        err = struct.unpack_from("=i", ack, 16)[0]
        assert err == 0, "AUDIT_SET failed: %s" % os.strerror(-err)
    finally:
        s.close()


@pytest.fixture
def audit():
    if not has_target("crypt"):
        pytest.skip("no crypt target")
    burst = "/proc/sys/kernel/printk_ratelimit_burst"
    with open(burst) as f:
        old_burst = f.read().strip()
    with open(burst, "w") as f:
        f.write("10000")
    _audit_enable(True)
    k = Kmsg()
    yield k
    k.close()
    _audit_enable(False)
    with open(burst, "w") as f:
        f.write(old_burst)


def _records(lines):
    """The dm audit records in LINES, without the audit(time:serial) stamp."""
    out = []
    for line in lines:
        m = re.search(r"audit: type=(133[89]) audit\([0-9.:]+\): (module=.*)", line)
        if m:
            out.append((int(m.group(1)), m.group(2)))
    return out


def _wait_records(kmsg, count):
    """kauditd prints records from its own thread: wait for COUNT of them."""
    got = []

    def enough():
        got.extend(_records(kmsg.lines()))
        return len(got) >= count
    try:
        wait_for(enough, timeout=5, what="%d audit records" % count)
    except AssertionError:
        log = run("dmesg").splitlines()
        raise AssertionError("no dm audit records; audit lines in the log: %s"
                             % [line for line in log if "audit" in line][-8:])
    got.extend(_records(kmsg.lines()))
    return got


def _task(rec):
    """Drop the task fields stock prints between op= and dev=."""
    return re.sub(r" ppid=.* (dev=)", r" \1", rec)


def test_crypt_ctr_and_dtr_are_audited(brd, audit):
    ram = brd(1, 16)[0]
    create("aud", "0 2048 crypt aes-xts-plain64 %s 0 %s 0" % (KEY, ram))
    minor = info("aud")["minor"]
    major = info("aud")["major"]
    remove("aud")
    recs = _wait_records(audit, 2)
    assert [(t, _task(r)) for t, r in recs] == [
        (1338, f"module=crypt op=ctr dev={major}:{minor} error_msg='success' res=1"),
        (1338, f"module=crypt op=dtr dev={major}:{minor} error_msg='success' res=1"),
    ]
    # A control record names the task that did it.
    assert 'comm="dmsetup"' in recs[0][1] and " uid=0 " in recs[0][1], recs[0][1]


def test_crypt_ctr_failure_is_audited_with_the_error(brd, audit):
    ram = brd(1, 16)[0]
    fails("dmsetup", "create", "aud", "--table",
          "0 2048 crypt aes-xts-plain64 %s 0 %s 0" % ("zz" * 32, ram))
    recs = [(t, _task(r)) for t, r in _wait_records(audit, 2)]
    # The failed constructor is followed by the destructor it calls.
    assert len(recs) == 2, recs
    m = re.fullmatch(r"module=crypt op=ctr (dev=\d+:\d+) "
                     r"error_msg='Error decoding and setting key' res=0", recs[0][1])
    assert m and recs[0][0] == 1338, recs
    assert recs[1] == (1338, f"module=crypt op=dtr {m.group(1)} error_msg='success' res=1")
