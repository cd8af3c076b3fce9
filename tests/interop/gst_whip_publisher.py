#!/usr/bin/python3
"""A WHIP client (RFC 9725) on GStreamer's webrtcbin, publishing test video and audio.

Run with Debian's own ``/usr/bin/python3`` (python3-gi and the GStreamer typelibs live there,
not in the project's venv):

    /usr/bin/python3 tests/interop/gst_whip_publisher.py --url http://127.0.0.1:8080/whip/ROOM \
        --token JWT --codec vp8|h264 --seconds 8 [--mtu 1400] [--setup actpass|active]

webrtcbin makes its own DTLS certificate (self-signed RSA-2048 in GStreamer 1.22); that is the
point: it is what a stock GStreamer encoder presents to the node. One line per notable event
goes to stdout; on failure one line goes to stderr and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstSdp", "1.0")
    gi.require_version("GstWebRTC", "1.0")
    from gi.repository import Gst, GstSdp, GstWebRTC
except (ImportError, ValueError) as exc:  # ValueError: gi is there, a typelib is not
    sys.exit(f"gst_whip_publisher: {exc}; install python3-gi gir1.2-gst-plugins-bad-1.0")

CONNECT_TIMEOUT = 15.0  # seconds from start until the peer connection must be connected
GATHER_TIMEOUT = 10.0

VIDEO = {
    "vp8": (
        "vp8enc deadline=1 keyframe-max-dist=60 ! rtpvp8pay name=videopay pt=96 mtu={mtu}"
        " ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000"
    ),
    "h264": (
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60"
        " ! video/x-h264,profile=constrained-baseline"
        " ! rtph264pay name=videopay pt=102 config-interval=-1 mtu={mtu}"
        " aggregate-mode=zero-latency"
        " ! application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000"
    ),
}
AUDIO = (
    "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc"
    " ! rtpopuspay pt=111"
    " ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000"
    " ! webrtc."
)


def say(line: str) -> None:
    print(line, flush=True)  # flushed: the test reads our output while we run


def show(which: str, sdp: str) -> None:
    """The lines of an SDP that tell why two stacks do or do not agree, for the test's log."""
    for line in sdp.splitlines():
        if line.startswith(("m=", "a=setup:", "a=fingerprint:", "a=rtpmap:", "a=fmtp:")):
            say(f"{which} {line[:100]}")
    candidates = sum(line.startswith("a=candidate:") for line in sdp.splitlines())
    say(f"{which} candidates {candidates}")


class Failed(Exception):
    """The one-line reason the publisher gives up."""


class Publisher:
    def __init__(self, codec: str, mtu: int) -> None:
        description = (
            # max-bundle: one ICE/DTLS transport for both m-lines, as GStreamer's own WHIP
            # elements do (the audio m-line is then offered bundle-only, port 0).
            "webrtcbin name=webrtc bundle-policy=max-bundle "
            "videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 "
            f"! videoconvert ! queue ! {VIDEO[codec].format(mtu=mtu)} ! webrtc. "
            f"{AUDIO}"
        )
        self.pipeline = Gst.parse_launch(description)
        self.webrtc = self.pipeline.get_by_name("webrtc")
        self.negotiation_needed = threading.Event()
        self.gathered = threading.Event()
        self.connected = threading.Event()
        self.failure: str | None = None  # set from webrtcbin's threads, read by the main one
        self.max_rtp_bytes = 0
        self.webrtc.connect("on-negotiation-needed", lambda _: self.negotiation_needed.set())
        self.webrtc.connect("notify::ice-gathering-state", self._on_gathering)
        self.webrtc.connect("notify::ice-connection-state", self._on_ice_connection)
        self.webrtc.connect("notify::connection-state", self._on_connection)
        # The largest RTP packet the video payloader produced: whether ~MTU-sized packets
        # were really sent (and so had to survive the SFU) is what the H.264 test checks.
        pay_src = self.pipeline.get_by_name("videopay").get_static_pad("src")
        pay_src.add_probe(Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, self._measure)

    def _measure(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        if info.type & Gst.PadProbeType.BUFFER_LIST:
            buffers = info.get_buffer_list()
            sizes = [buffers.get(i).get_size() for i in range(buffers.length())]
        else:
            sizes = [info.get_buffer().get_size()]
        self.max_rtp_bytes = max([self.max_rtp_bytes, *sizes])
        return Gst.PadProbeReturn.OK

    def _on_gathering(self, webrtc: Gst.Element, _spec: object) -> None:
        state = webrtc.get_property("ice-gathering-state")
        say(f"ice-gathering-state {state.value_nick}")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            self.gathered.set()

    def _on_ice_connection(self, webrtc: Gst.Element, _spec: object) -> None:
        say(f"ice-connection-state {webrtc.get_property('ice-connection-state').value_nick}")

    def _on_connection(self, webrtc: Gst.Element, _spec: object) -> None:
        state = webrtc.get_property("connection-state")
        say(f"connection-state {state.value_nick}")
        if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED:
            self.connected.set()
        elif state == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            self.failure = "the peer connection failed (ICE or DTLS)"

    def _call(self, signal: str, *args: object) -> Gst.Structure | None:
        """Emit a promise-taking webrtcbin action signal and wait for its reply.

        Blocking on the promise is fine here: we are on the main thread, webrtcbin answers
        from its own.
        """
        promise = Gst.Promise.new()
        self.webrtc.emit(signal, *args, promise)
        if promise.wait() != Gst.PromiseResult.REPLIED:
            raise Failed(f"{signal}: no reply from webrtcbin")
        reply = promise.get_reply()
        if reply is not None and reply.has_field("error"):
            raise Failed(f"{signal}: {reply.get_value('error').message}")
        return reply

    def start(self) -> None:
        self.pipeline.set_state(Gst.State.PLAYING)
        # WHIP only sends: without this webrtcbin offers sendrecv on both m-lines.
        for index in range(2):
            transceiver = self.webrtc.emit("get-transceiver", index)
            if transceiver is not None:
                transceiver.set_property(
                    "direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)

    def offer(self) -> str:
        if not self.negotiation_needed.wait(GATHER_TIMEOUT):
            raise Failed("webrtcbin never asked for negotiation")
        reply = self._call("create-offer", None)
        assert reply is not None
        offer = reply.get_value("offer")
        self._call("set-local-description", offer)
        # Non-trickle WHIP (RFC 9725 §4.3.2): the offer we POST carries all our candidates,
        # which webrtcbin adds to its local description as libnice finds them.
        if not self.gathered.wait(GATHER_TIMEOUT):
            raise Failed(f"ICE gathering did not complete within {GATHER_TIMEOUT} s")
        text: str = self.webrtc.get_property("local-description").sdp.as_text()
        return text

    def answer(self, sdp: str) -> None:
        result, message = GstSdp.SDPMessage.new_from_text(sdp)
        if result != GstSdp.SDPResult.OK:
            raise Failed(f"the answer is not valid SDP ({result.value_nick})")
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, message)
        self._call("set-remote-description", answer)

    def check(self) -> None:
        """Raise if the connection failed or the pipeline posted an error."""
        if self.failure is not None:
            raise Failed(self.failure)
        message = self.pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
        if message is not None:
            error, _debug = message.parse_error()
            raise Failed(f"pipeline error from {message.src.get_name()}: {error.message}")

    def stop(self) -> None:
        self.pipeline.set_state(Gst.State.NULL)


def post_offer(url: str, token: str, offer: str) -> tuple[str, str]:
    """RFC 9725 §4.2: POST the offer, get ``201 Created`` with the answer and a Location."""
    request = urllib.request.Request(url, data=offer.encode(), method="POST", headers={
        "Content-Type": "application/sdp", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, location, body = response.status, response.headers["Location"], response.read()
    except urllib.error.HTTPError as exc:
        say(f"http POST {exc.code}")
        raise Failed(f"WHIP POST answered {exc.code}: {exc.read().decode(errors='replace')}"
                     ) from None
    say(f"http POST {status}")
    if status != 201 or not location:
        raise Failed(f"WHIP POST answered {status} (Location {location!r}), expected 201")
    return body.decode(), urllib.parse.urljoin(url, location)


def delete_session(location: str, token: str) -> None:
    """RFC 9725 §4.2: ending the session is a DELETE of its URL."""
    request = urllib.request.Request(location, method="DELETE",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            say(f"http DELETE {response.status}")
    except urllib.error.HTTPError as exc:
        raise Failed(f"WHIP DELETE answered {exc.code}") from None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="the WHIP endpoint, …/whip/ROOM")
    parser.add_argument("--token", required=True, help="bearer token with the publish grant")
    parser.add_argument("--codec", choices=sorted(VIDEO), default="vp8")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long to publish")
    parser.add_argument("--mtu", type=int, default=1400, help="largest RTP packet, bytes")
    parser.add_argument("--setup", choices=("actpass", "active"), default="actpass",
                        help="the offer's DTLS role; active makes the node the DTLS server")
    args = parser.parse_args()

    Gst.init(None)
    started = time.monotonic()
    publisher = Publisher(args.codec, args.mtu)
    try:
        publisher.start()
        offer = publisher.offer()
        if args.setup == "active":
            # Only the copy we POST changes: webrtcbin takes its own DTLS role from the answer's
            # a=setup (passive then), so it becomes the DTLS client and the node the server.
            offer = offer.replace("a=setup:actpass", "a=setup:active")
        show("offer", offer)
        answer, location = post_offer(args.url, args.token, offer)
        say(f"location {location}")
        show("answer", answer)
        publisher.answer(answer)
        while not publisher.connected.is_set():
            publisher.check()
            if time.monotonic() - started > CONNECT_TIMEOUT:
                raise Failed(f"not connected within {CONNECT_TIMEOUT:.0f} s")
            publisher.connected.wait(0.1)
        until = time.monotonic() + args.seconds
        while time.monotonic() < until:
            publisher.check()
            time.sleep(0.1)
        delete_session(location, args.token)
    except Failed as exc:
        print(f"gst_whip_publisher: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        publisher.stop()
        say(f"max-rtp-bytes {publisher.max_rtp_bytes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
