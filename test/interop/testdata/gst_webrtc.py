#!/usr/bin/python3
"""A WHIP publisher or WHEP player built on GStreamer's webrtcbin, for interop tests.

  gst_webrtc.py publish URL TOKEN SECONDS   sends VP8 video and Opus audio for SECONDS
  gst_webrtc.py play URL TOKEN SECONDS      receives for SECONDS, prints {"video": n, "audio": n}
                                             (RTP packets per kind) on stdout

Both offer with bundle-policy max-bundle, so every section after the first is
"m=... 0 ... a=bundle-only", as webrtcbin (and max-bundle browsers) do. Needs Debian's
/usr/bin/python3 with python3-gi and the GStreamer 1.22 webrtc plugins.
"""
import json
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

VIDEO_CAPS = "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000"
AUDIO_CAPS = "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000"


def fail(msg):
    print(json.dumps({"error": msg}), flush=True)
    sys.exit(1)


class Session:
    def __init__(self, mode, url, token, seconds):
        self.mode, self.url, self.token, self.seconds = mode, url, token, seconds
        self.counts = {"video": 0, "audio": 0}
        self.lock = threading.Lock()
        self.location = None
        self.loop = GLib.MainLoop()
        if mode == "publish":
            self.pipe = Gst.parse_launch(
                "webrtcbin name=wb bundle-policy=max-bundle "
                "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 "
                "! vp8enc deadline=1 target-bitrate=400000 keyframe-max-dist=30 ! rtpvp8pay pt=96 "
                f"! {VIDEO_CAPS} ! wb. "
                "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc "
                f"! rtpopuspay pt=111 ! {AUDIO_CAPS} ! wb."
            )
            self.wb = self.pipe.get_by_name("wb")
            for t in self.transceivers():
                t.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        else:
            self.pipe = Gst.Pipeline.new("play")
            self.wb = Gst.ElementFactory.make("webrtcbin", "wb")
            self.wb.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
            self.pipe.add(self.wb)
            for caps in (VIDEO_CAPS, AUDIO_CAPS):
                self.wb.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY,
                             Gst.Caps.from_string(caps))
            self.wb.connect("pad-added", self.on_pad)
        self.wb.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.wb.connect("notify::ice-gathering-state", self.on_gathering)
        self.negotiated = False
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", lambda _b, m: fail("pipeline: %s" % m.parse_error()[0].message))

    def transceivers(self):
        out, i = [], 0
        while True:
            t = self.wb.emit("get-transceiver", i)
            if t is None:
                return out
            out.append(t)
            i += 1

    def on_negotiation_needed(self, _wb):
        if self.negotiated:
            return
        self.negotiated = True
        promise = Gst.Promise.new_with_change_func(self.on_offer, None)
        self.wb.emit("create-offer", None, promise)

    def on_offer(self, promise, _data):
        promise.wait()
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None else None
        if offer is None:
            fail("create-offer: %s" % (reply.to_string() if reply is not None else "no reply"))
        self.wb.emit("set-local-description", offer, Gst.Promise.new())

    def on_gathering(self, _wb, _pspec):
        if self.wb.get_property("ice-gathering-state") != GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            return
        GLib.idle_add(self.post_offer)

    def post_offer(self):
        sdp = self.wb.get_property("local-description").sdp.as_text()
        if "GST_WEBRTC_DEBUG_SDP" in __import__("os").environ:
            print(sdp, file=sys.stderr)
        req = urllib.request.Request(self.url, data=sdp.encode(), method="POST", headers={
            "Content-Type": "application/sdp", "Authorization": "Bearer " + self.token})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                answer = resp.read().decode()
                self.location = urllib.parse.urljoin(self.url, resp.headers.get("Location", ""))
        except urllib.error.HTTPError as e:
            fail("POST %s: %d %s" % (self.url, e.code, e.read().decode(errors="replace")))
        _, msg = GstSdp.SDPMessage.new_from_text(answer)
        desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        self.wb.emit("set-remote-description", desc, Gst.Promise.new())
        GLib.timeout_add(int(self.seconds * 1000), self.finish)
        return False

    def on_pad(self, _wb, pad):
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        kind = caps.get_structure(0).get_string("media") or "unknown"
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        self.pipe.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))
        pad.add_probe(Gst.PadProbeType.BUFFER, self.count, kind)

    def count(self, _pad, _info, kind):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
        return Gst.PadProbeReturn.OK

    def finish(self):
        if self.location:
            req = urllib.request.Request(self.location, method="DELETE",
                                         headers={"Authorization": "Bearer " + self.token})
            try:
                urllib.request.urlopen(req, timeout=5).close()
            except urllib.error.URLError:
                pass
        self.loop.quit()
        return False

    def run(self):
        self.pipe.set_state(Gst.State.PLAYING)
        GLib.timeout_add(int((self.seconds + 20) * 1000), lambda: fail("timed out"))
        self.loop.run()
        self.pipe.set_state(Gst.State.NULL)
        with self.lock:
            print(json.dumps(self.counts), flush=True)


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("publish", "play"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    Gst.init(None)
    Session(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])).run()


if __name__ == "__main__":
    main()
