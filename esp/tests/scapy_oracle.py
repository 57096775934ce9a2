#!/usr/bin/env python3
"""Independent ESP oracle for vpn-esp's tests: scapy.layers.ipsec (with `cryptography`).

Reads jobs from stdin, one per line, and writes one result line per job:

  decrypt KEYHEX SALTHEX SPI ESN(0|1) ESNHIGH UDP(0|1) PACKETHEX
      PACKETHEX is a whole outer IPv4 packet (ESP, or UDP/4500 + ESP) made by vpn-esp.
      scapy checks the ICV and decrypts it as a tunnel-mode SA; prints the inner IP packet hex.
  encrypt KEYHEX SALTHEX SPI ESN(0|1) ESNHIGH UDP(0|1) SEQ SRC DST INNERHEX
      scapy encapsulates INNERHEX (an IPv4 packet) in tunnel mode (random IV) and prints the
      outer packet hex, for vpn-esp to decapsulate.

A failed job prints "ERR <reason>". If scapy or cryptography is missing it tries
`pip install scapy cryptography` once; if that fails it exits with status 3.
"""

import subprocess
import sys


def _import_scapy():
    try:
        import scapy  # noqa: F401
        import cryptography  # noqa: F401
    except ImportError:
        r = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "scapy", "cryptography"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if r.returncode != 0:
            print("ERR scapy/cryptography not installable", flush=True)
            sys.exit(3)
    import logging

    logging.getLogger("scapy").setLevel(logging.ERROR)
    from scapy.layers.inet import IP, UDP
    from scapy.layers.ipsec import ESP, SecurityAssociation

    return IP, UDP, ESP, SecurityAssociation


IP, UDP, ESP, SecurityAssociation = _import_scapy()


def make_sa(key, salt, spi, esn, high, udp, src="0.0.0.0", dst="0.0.0.0"):
    kwargs = dict(
        spi=spi,
        crypt_algo="AES-GCM",
        crypt_key=key + salt,  # scapy takes RFC 4106 KEYMAT: key || salt
        auth_algo="NULL",
        auth_key=None,
        tunnel_header=IP(src=src, dst=dst),
        esn_en=bool(esn),
        esn=high,
    )
    if udp:
        kwargs["nat_t_header"] = UDP(sport=4500, dport=4500)
    return SecurityAssociation(ESP, **kwargs)


def decrypt(args):
    key, salt = bytes.fromhex(args[0]), bytes.fromhex(args[1])
    spi, esn, high, udp = int(args[2]), int(args[3]), int(args[4]), int(args[5])
    raw_pkt = bytes.fromhex(args[6])
    pkt = IP(raw_pkt)
    if udp:
        if UDP not in pkt or pkt[UDP].dport != 4500:
            return "ERR not UDP/4500"
        if pkt[UDP].chksum != 0:
            return "ERR UDP checksum not zero"
        # scapy dissects UDP/4500 payloads as ESP (or NON_ESP for a zero marker).
        if ESP not in pkt:
            return "ERR no ESP inside UDP"
    elif pkt.proto != 50:
        return "ERR outer protocol %d" % pkt.proto
    # Outer header sanity, as scapy sees it.
    chk = IP(raw_pkt)
    del chk.chksum
    if IP(bytes(chk)).chksum != pkt.chksum:
        return "ERR outer IPv4 checksum"
    if pkt.len != len(raw_pkt):
        return "ERR outer IPv4 length"
    sa = make_sa(key, salt, spi, esn, high, udp)
    try:
        inner = sa.decrypt(pkt)
    except Exception as e:  # scapy raises IPSecIntegrityError on a bad ICV
        return "ERR decrypt: %s" % type(e).__name__
    if not isinstance(inner, IP):
        return "ERR inner is %s" % type(inner).__name__
    return bytes(inner).hex()


def encrypt(args):
    key, salt = bytes.fromhex(args[0]), bytes.fromhex(args[1])
    spi, esn, high, udp = int(args[2]), int(args[3]), int(args[4]), int(args[5])
    seq, src, dst = int(args[6]), args[7], args[8]
    inner = IP(bytes.fromhex(args[9]))
    sa = make_sa(key, salt, spi, esn, high, udp, src, dst)
    out = sa.encrypt(inner, seq_num=seq)
    return bytes(out).hex()


def main():
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        try:
            if parts[0] == "decrypt":
                res = decrypt(parts[1:])
            elif parts[0] == "encrypt":
                res = encrypt(parts[1:])
            else:
                res = "ERR unknown op"
        except Exception as e:
            res = "ERR exception %s: %s" % (type(e).__name__, e)
        print(res, flush=True)


if __name__ == "__main__":
    main()
