# The cffi extension built from sfu/native/batch_send.c by sfu/_native_build.py.
from typing import Any

ffi: Any
lib: Any
