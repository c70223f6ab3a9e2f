#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Print the mappings of a thin_dump XML file, one "dev vblock dblock time"
line each, in key order (the same form as pdata-test -l)."""
import sys
import xml.etree.ElementTree as ET

out = []
for dev in ET.parse(sys.argv[1]).getroot().iter('device'):
    d = int(dev.get('dev_id'))
    for m in dev:
        t = int(m.get('time'))
        if m.tag == 'single_mapping':
            out.append((d, int(m.get('origin_block')), int(m.get('data_block')), t))
        elif m.tag == 'range_mapping':
            o, b = int(m.get('origin_begin')), int(m.get('data_begin'))
            for i in range(int(m.get('length'))):
                out.append((d, o + i, b + i, t))
for line in sorted(out):
    print(*line)
