#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target from tests/vectors/protocol/.

    seeds.py VECTORS_DIR OUT_DIR

OUT_DIR/<target>/ gets one file per seed (binary; never committed).
"""
import base64
import json
import os
import sys


def main():
    vec, out = sys.argv[1], sys.argv[2]

    def load(name):
        with open(os.path.join(vec, 'protocol', name)) as f:
            return json.load(f)

    seeds = {t: [] for t in ('hello', 'reply', 'reply2', 'confirm', 'finish', 'record', 'stream',
                             'text', 'trust', 'uri', 'keyfile')}
    hs = load('handshake.json')
    msgs = {k: bytes.fromhex(hs[k]) for k in ('hello', 'reply', 'confirm', 'finish')}
    for k, m in msgs.items():
        seeds[k].append(m)
    for t in load('hello_reject.json')['tests']:
        seeds['hello'].append(bytes.fromhex(t['hello']))
    # Suite 0x02: EC and mixed sessions, and its rejected HELLOs.
    for sess in load('handshake_suite2.json')['sessions'].values():
        for k in ('hello', 'reply', 'confirm', 'finish'):
            seeds[k].append(bytes.fromhex(sess[k]))
        seeds['reply2'].append(bytes.fromhex(sess['reply']))
    seeds['reply2'].append(msgs['reply'])
    for t in load('hello_reject_suite2.json')['tests']:
        seeds['hello'].append(bytes.fromhex(t['hello']))

    records = [bytes.fromhex(t['record']) for t in load('records.json')['tests']]
    records += [bytes.fromhex(r['record']) for r in hs.get('records', []) if 'record' in r]
    for r in records:
        seeds['record'].append(b'\x00' + r)
        seeds['record'].append(b'\x02' + r)
    # Scripts of attacks on genuine records (see fuzz_record.c): op, arg pairs.
    scripts = [
        [0, 5, 1, 0, 0, 10, 1, 0],
        [0, 5, 0, 6, 0, 7, 2, 0, 1, 0, 1, 0],
        [0, 5, 1, 0, 3, 0, 3, 0],
        [0, 9, 4, 3, 1, 0, 5, 0x85, 5, 7],
        [0, 1, 0, 2, 0, 3, 6, 1, 1, 0, 1, 0, 7, 0, 1, 0],
        [0, 4, 8, 1, 1, 0, 9, 0x5a, 1, 0],
        [0, 0, 0, 255, 1, 0, 1, 0],
    ]
    for s in scripts:
        seeds['record'].append(b'\x01' + bytes(s))
        seeds['record'].append(b'\x03' + bytes(s))

    for t in load('framing.json')['tests']:
        stream = bytes.fromhex(t['stream'])
        for chunk in (0, 3, 255):
            seeds['stream'].append(bytes([chunk]) + stream)
            seeds['stream'].append(bytes([chunk]) + stream + stream[:7])
        seeds['text'].append(b'\x00' + t['text'].encode())
        seeds['text'].append(b'\x00' + b'bob: ' + t['text'].encode() + b' (12:01)')
        # The same message cut into fragments of 8 base64 characters.
        b64 = base64.b64encode(bytes.fromhex(t['message'])).decode()
        pieces = [b64[i:i + 8] for i in range(0, len(b64), 8)]
        lines = ['?P11C,0badcafe,%d,%d,%s,' % (k + 1, len(pieces), p) for k, p in
                 enumerate(pieces)]
        seeds['text'].append(b'\x00' + '\n'.join(lines).encode())
        seeds['text'].append(b'\x00' + '\n'.join(reversed(lines)).encode())
        seeds['text'].append(b'\x14' + bytes.fromhex(t['message']))
    seeds['text'].append(b'\x00hello, plain text\n?P11C:????.\n?P11C,zz,1,1,AA==,')

    fps = {t['key']: t['sha256'] for t in load('fingerprint.json')['tests']}
    trust = '# people I have checked\n\nAlice %s\n  Bob   %s  \nBob Smith %s\n' % (
        fps['alice'], fps['bob'], ':'.join(fps.get('carol3072', fps['alice'])[i:i + 4]
                                           for i in range(0, 64, 4)))
    seeds['trust'].append(trust.encode())
    seeds['trust'].append(b'Alice\n')
    seeds['trust'].append(b'')

    for u in ('pkcs11:token=p11chat-test;object=alice',
              'pkcs11:token=p11chat-test;object=bob;type=private',
              'pkcs11:token=p11chat-test;id=%01;type=public',
              'pkcs11:object=alice?pin-value=1234',
              'pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=x;id=%02',
              'pkcs11:token=nope', 'pkcs11:', 'pkcs11:object=%zz', 'notpkcs11:object=a',
              'pkcs11:slot-id=0;object=alice;type=cert'):
        seeds['uri'].append(u.encode())
        # the DER of a key file naming it: SEQUENCE { VisibleString, UTF8String }
        desc = b'PKCS#11 Provider URI v1.0'
        body = bytes([0x1A, len(desc)]) + desc + bytes([0x0C, len(u)]) + u.encode()
        seeds['keyfile'].append(bytes([0x30, len(body)]) + body)

    for target, items in seeds.items():
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for i, data in enumerate(items):
            with open(os.path.join(d, 'seed%03d' % i), 'wb') as f:
                f.write(data)


if __name__ == '__main__':
    main()
