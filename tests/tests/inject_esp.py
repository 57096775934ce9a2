#!/usr/bin/env python3
"""Crafts hostile ESP-in-UDP packets with scapy (independent of our code) and sends them.

usage: inject_esp.py KEYMATHEX SPI OUTER_SRC OUTER_DST INNER_SRC INNER_DST PORT
Run inside the sender's network namespace. Sends, in this order, with UDP payloads that name
the case ("INJECT-<case>"):
  valid-1000   a good packet, sequence 1000
  replay-1000  the same bytes again (replayed)
  valid-5000   a good packet, sequence 5000 (moves the window)
  old-1        sequence 1, now below the window (too old)
  flipped      sequence 5001 with one ciphertext bit flipped (bad ICV)
  foreign-src  sequence 5002, inner source 10.9.9.9 (outside the selectors)
  unknown-spi  sequence 1 under an SPI nobody has
"""

import logging
import sys

logging.getLogger("scapy").setLevel(logging.ERROR)
from scapy.all import conf, send  # noqa: E402
from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.ipsec import ESP, SecurityAssociation  # noqa: E402

conf.verb = 0


def main():
    keymat = bytes.fromhex(sys.argv[1])
    spi = int(sys.argv[2], 0)
    outer_src, outer_dst, inner_src, inner_dst = sys.argv[3:7]
    port = int(sys.argv[7])

    def sa(spi):
        return SecurityAssociation(
            ESP,
            spi=spi,
            crypt_algo="AES-GCM",
            crypt_key=keymat,
            auth_algo="NULL",
            auth_key=None,
            tunnel_header=IP(src=outer_src, dst=outer_dst),
            nat_t_header=UDP(sport=4500, dport=4500),
        )

    good = sa(spi)

    def seal(case, seq, src=inner_src, which=good):
        inner = IP(src=src, dst=inner_dst) / UDP(sport=40000, dport=port) / ("INJECT-" + case)
        return which.encrypt(inner, seq_num=seq)

    valid = seal("valid-1000", 1000)
    send(valid)
    send(valid)  # replay
    send(seal("valid-5000", 5000))
    send(seal("old-1", 1))
    flipped = bytearray(bytes(seal("flipped", 5001)))
    flipped[60] ^= 0x01  # inside the ciphertext (IP 20 + UDP 8 + ESP 8 + IV 8 = 44)
    send(IP(bytes(flipped)))
    send(seal("foreign-src", 5002, src="10.9.9.9"))
    send(seal("unknown-spi", 1, which=sa(0x7777_7777)))


main()
