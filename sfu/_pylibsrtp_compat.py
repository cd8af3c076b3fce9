"""Every use of pylibsrtp's private internals by the batch sender, in one place.

pylibsrtp has no public way to protect into a caller's buffer or to reach the ``srtp_t`` of a
session, and the batch sender needs both. :func:`check_internals` verifies that each internal
still exists in the installed release and ``tests/sfu/test_batch_send.py`` fails loudly when a
new pylibsrtp changes them (pylibsrtp is pinned to an exact version in pyproject.toml).

What is used, and why:

- ``Session._srtp``, an ``ffi.new("srtp_t *")``: its ``[0]`` is the session's ``srtp_t``, which
  the native sender passes to ``srtp_protect`` for each target.
- ``pylibsrtp._binding.lib.srtp_protect`` and ``.ffi``: its address is handed to the native
  sender once, so the libsrtp that pylibsrtp bundles (statically, with its own global state)
  protects the sessions it created; the reference sender calls it through cffi on a buffer of
  a full MTU (``Session.protect`` takes at most 1356 bytes and allocates per call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pylibsrtp
from pylibsrtp import SRTP_MAX_TRAILER_LEN
from pylibsrtp._binding import ffi as _srtp_ffi
from pylibsrtp._binding import lib as _srtp_lib

# libsrtp 2's in-place protect; libsrtp 3 takes separate input and output buffers and lengths.
SRTP_PROTECT_SIGNATURE = "srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)"
SRTP_ERR_STATUS_OK = 0


def check_internals() -> list[str]:
    """What the batch sender needs of pylibsrtp that the installed release lacks or changed."""
    problems: list[str] = []
    if "_srtp" not in pylibsrtp.Session.__init__.__code__.co_names:
        problems.append("pylibsrtp.Session._srtp")
    protect = getattr(_srtp_lib, "srtp_protect", None)
    if protect is None:
        problems.append("pylibsrtp._binding.lib.srtp_protect")
    elif _srtp_ffi.typeof(protect).cname != SRTP_PROTECT_SIGNATURE:
        problems.append(f"srtp_protect is {_srtp_ffi.typeof(protect).cname}, "
                        f"not {SRTP_PROTECT_SIGNATURE}")
    if _srtp_lib.srtp_err_status_ok != SRTP_ERR_STATUS_OK:
        problems.append("srtp_err_status_ok is not 0")
    if SRTP_MAX_TRAILER_LEN != 16 + 128:
        problems.append(f"SRTP_MAX_TRAILER_LEN is {SRTP_MAX_TRAILER_LEN}, not 144")
    return problems


def srtp_protect_address() -> int:
    """The address of the srtp_protect inside pylibsrtp's binding."""
    return int(_srtp_ffi.cast("uintptr_t", _srtp_ffi.addressof(_srtp_lib, "srtp_protect")))


def session_context_address(session: pylibsrtp.Session) -> int:
    """The session's srtp_t, valid while ``session`` lives."""
    return int(_srtp_ffi.cast("uintptr_t", session._srtp[0]))


@dataclass(frozen=True)
class SrtpProtector:
    """libsrtp's srtp_protect on our own buffer: ``capacity`` bytes of RTP plus the trailer."""

    capacity: int
    _cdata: Any
    _view: Any
    _length: Any

    @classmethod
    def create(cls, capacity: int) -> SrtpProtector:
        cdata = _srtp_ffi.new("char[]", capacity + SRTP_MAX_TRAILER_LEN)
        return cls(capacity, cdata, _srtp_ffi.buffer(cdata), _srtp_ffi.new("int *"))

    def protect(self, session: pylibsrtp.Session, packet: bytes | bytearray) -> bytes | None:
        """The SRTP packet, or None when it is too long or libsrtp refuses it."""
        size = len(packet)
        if size > self.capacity:
            return None
        self._view[0:size] = packet
        self._length[0] = size
        if _srtp_lib.srtp_protect(session._srtp[0], self._cdata, self._length):
            return None
        return bytes(self._view[0 : self._length[0]])
