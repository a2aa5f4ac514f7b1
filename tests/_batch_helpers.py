"""Helpers that worker processes import by name (pickled by reference)."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


class DieOnceSigner:
    """A picklable signing callback that SIGKILLs its own process once.

    The first pool worker to remove ``sentinel`` dies on the spot, mid-item, as
    a worker killed by the OOM killer would; every other call signs normally.
    """

    def __init__(self, key_pem: bytes, sentinel: Path) -> None:
        self.key_pem = key_pem
        self.sentinel = sentinel

    def __call__(self, data: bytes) -> bytes:
        if multiprocessing.current_process().name != "provenance-worker":
            # The calling process signs the first chunks while the pool starts:
            # only a pool worker plays the victim.
            return self._sign(data)
        try:
            self.sentinel.unlink()
        except FileNotFoundError:
            pass
        else:
            os.kill(os.getpid(), signal.SIGKILL)
        return self._sign(data)

    def _sign(self, data: bytes) -> bytes:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key.sign(data, ec.ECDSA(hashes.SHA256()))


class PidLoggingSigner:
    """A picklable signing callback that notes which process signed each call."""

    def __init__(self, key_pem: bytes, log: Path) -> None:
        self.key_pem = key_pem
        self.log = log

    def __call__(self, data: bytes) -> bytes:
        with self.log.open("a") as handle:
            handle.write(f"{os.getpid()}\n")
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
