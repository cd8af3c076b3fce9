"""FFmpeg's own WHIP client (PyAV's bundled libavformat ``whip`` muxer) as a field encoder.

It is the same code as ``ffmpeg -f whip``. Its GnuTLS build makes a P-224 DTLS certificate by
default, which current OpenSSL (and browsers' BoringSSL) refuse; a P-256 certificate passed
with ``cert_file``/``key_file`` is what README.md tells operators to use, and what this does.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
from certificates import self_signed
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

WIDTH, HEIGHT, FPS = 640, 360, 30

# x264 as encoders run it. Constrained Baseline is what browsers send; High with CABAC and
# 8x8 transforms ("veryfast") is what OBS, field and hardware encoders send by default.
X264_BASELINE = {"profile": "baseline", "tune": "zerolatency", "preset": "ultrafast",
                 "g": "30", "bf": "0"}
X264_HIGH = {"profile": "high", "tune": "zerolatency", "preset": "veryfast", "g": "30",
             "bf": "0"}


def p256_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate (RFC 8827 §6.5) for FFmpeg's DTLS."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed(key, "ffmpeg-whip")
    cert_path, key_path = directory / "whip.crt", directory / "whip.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class FfmpegEncoder:
    """Publishes H.264 + Opus over WHIP from a thread, paced in real time."""

    url: str
    token: str
    directory: Path
    x264: dict[str, str] = field(default_factory=lambda: dict(X264_BASELINE))
    seconds: float = 8.0
    errors: list[BaseException] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float = 30) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "FFmpeg did not finish"
        assert not self.errors, self.errors

    def _run(self) -> None:
        try:
            cert, key = p256_certificate(self.directory)
            output = av.open(self.url, mode="w", format="whip", options={
                "authorization": self.token, "cert_file": str(cert), "key_file": str(key)})
            video = output.add_stream("libx264", rate=FPS, options=self.x264)
            video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            audio = output.add_stream("libopus", rate=48000)
            audio.layout = "stereo"
            started = time.monotonic()
            for index in range(int(self.seconds * FPS)):
                frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
                for number, plane in enumerate(frame.planes):
                    # A moving gradient: real motion, so that the encoder makes real P-frames.
                    row = bytes((x + index * 4 + number * 40) % 256 for x in range(plane.line_size))
                    plane.update(row * (plane.buffer_size // plane.line_size))
                frame.pts = index
                for packet in video.encode(frame):
                    output.mux(packet)
                for half in range(2):
                    sound = av.AudioFrame(format="s16", layout="stereo", samples=960)
                    for plane in sound.planes:
                        plane.update(bytes(960 * 4))
                    sound.sample_rate = 48000
                    sound.pts = (index * 2 + half) * 960
                    for packet in audio.encode(sound):
                        output.mux(packet)
                time.sleep(max(0.0, started + (index + 1) / FPS - time.monotonic()))
            output.close()
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.errors.append(exc)
