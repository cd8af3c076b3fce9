"""A microphone for aiortc test clients that speaks when told to: a 400 Hz tone, or silence.

aiortc's sender measures every frame it encodes (RFC 6465 appendix A) and puts the level in
the RFC 6464 header extension when it was negotiated: a loud tone is about -15 dBov, silence
-127 dBov.
"""

from __future__ import annotations

import math
import struct

from aiortc.mediastreams import AudioStreamTrack
from av import AudioFrame

TONE_HZ = 400
TONE_AMPLITUDE = 8000  # of 32767: about -15 dBov RMS


class ToneTrack(AudioStreamTrack):
    """Silence until ``speaking`` is set, then a steady tone while it stays set."""

    def __init__(self, speaking: bool = False) -> None:
        super().__init__()
        self.speaking = speaking
        self._tone: bytes | None = None

    async def recv(self) -> AudioFrame:
        frame = await super().recv()  # aiortc's paced 20 ms of silence
        assert isinstance(frame, AudioFrame)
        if self.speaking:
            if self._tone is None:
                rate, samples = frame.sample_rate, frame.samples
                self._tone = struct.pack(f"<{samples}h", *(
                    round(TONE_AMPLITUDE * math.sin(2 * math.pi * TONE_HZ * i / rate))
                    for i in range(samples)))
            frame.planes[0].update(self._tone)
        return frame
