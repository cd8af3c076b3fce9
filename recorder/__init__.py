"""Recording of a room's program without transcoding (issue #12; the wiring into the node, the
replay API and live HLS are still to come).

The pieces, each without I/O but for storage:

- :mod:`recorder.depacketize`: RTP payloads into frames (VP8 RFC 7741, H.264 RFC 6184, Opus
  RFC 7587), with loss handling that never emits a broken video frame;
- :mod:`recorder.timeline`: RTP timestamps onto one recording clock through the publishers'
  sender reports (RFC 3550 §6.4.1), so audio and video stay aligned across program switches;
- :mod:`recorder.track`: :class:`~recorder.track.RecordedTrack`, a
  :class:`sfu.forwarding.PacketObserver` that hands ``(TrackFormat, EncodedFrame)`` on;
- :mod:`recorder.segments`: 2-6 s segments begun on keyframes (WebM for VP8 + Opus, CMAF for
  H.264 + Opus), committed atomically with a manifest, so ``kill -9`` loses one segment;
- :mod:`recorder.replay`: finalisation into one seekable file (+ HLS VOD for MP4) and the
  recovery of unfinished recordings at start; :mod:`recorder.thumbnail`; :mod:`recorder.storage`.
"""
