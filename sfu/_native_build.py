"""Build ``sfu._native`` from ``sfu/native/batch_send.c`` (cffi API mode), into the source tree.

    .venv/bin/python -m sfu._native_build      (``make setup`` runs it when the C file changes)

The module is built against Python's limited API (``.abi3.so``), as pylibsrtp's own binding is,
so one build serves every CPython 3 the virtualenv may move to. It does not link libsrtp: see
``sfu/batch_send.py``. A missing compiler or missing Python headers stop the build with one line
saying what to install.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

import cffi

PACKAGE = Path(__file__).resolve().parent
SOURCE = PACKAGE / "native" / "batch_send.c"
MODULE = "sfu._native"

# What Python sees of batch_send.c; `...;` lets the compiler fill in the rest of each struct.
CDEF = """
#define FW_MAX_RTP_PACKET_BYTES ...
#define FW_SRTP_MAX_TRAILER_LEN ...
#define FW_UIO_MAXIOV ...
typedef int (*fw_srtp_protect_fn)(void *ctx, void *rtp_hdr, int *len_ptr);
typedef struct { void *srtp; ...; } fw_target;
typedef struct { uint64_t sent; uint64_t failed; int last_errno; ...; } fw_sender;
fw_sender *fw_sender_new(int fd, fw_srtp_protect_fn protect);
void fw_sender_free(fw_sender *sender);
int fw_target_set(fw_target *target, void *srtp, const char *ipv4, uint16_t port);
size_t fw_send(fw_sender *sender, const unsigned char *packet, size_t length,
               const fw_target *targets, size_t count);
"""


def missing_toolchain() -> str | None:
    """One line saying what to install, or None when a C compiler and Python.h are there."""
    compiler = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not compiler or shutil.which(compiler[0]) is None:
        return "a C compiler is missing: apt-get install gcc"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        return "Python headers are missing: apt-get install python3-dev"
    return None


def builder() -> cffi.FFI:
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    # #line: compiler messages name batch_send.c, not cffi's generated wrapper.
    ffi.set_source(MODULE, f'#line 1 "{SOURCE}"\n{SOURCE.read_text()}', py_limited_api=True,
                   extra_compile_args=["-O2", "-Wall", "-Wextra"])
    return ffi


def build() -> Path:
    """Compile in a scratch folder, then move only the extension into the package."""
    with tempfile.TemporaryDirectory(prefix="fairwire-native-") as scratch:
        try:
            built = Path(builder().compile(tmpdir=scratch, verbose=False))
        except cffi.VerificationError as error:  # the compiler has printed why
            sys.exit(f"building {MODULE} failed: {error}")
        target = PACKAGE / built.name
        for stale in PACKAGE.glob("_native.*.so"):
            stale.unlink()
        shutil.move(built, target)
    return target


def main() -> None:
    problem = missing_toolchain()
    if problem is not None:
        sys.exit(problem)
    print(f"built {build().relative_to(PACKAGE.parent)}")


if __name__ == "__main__":
    main()
