"""The media plane: publish/subscribe on aiortc with RTP-level forwarding, never transcoding.

``forwarding`` and the modules it uses (``rtp``, ``sequencer``, ``keyframes``, ``history``,
``nack``, ``sender_report``, ``codecs``) are protocol logic without I/O; ``sessions`` is the thin
async layer on peer connections; ``_aiortc_compat`` holds every use of aiortc's internals.
This package knows nothing of HTTP or socket.io.
"""
