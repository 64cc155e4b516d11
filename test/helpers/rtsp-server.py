#!/usr/bin/python3
"""A real RTSP camera for the tests: GStreamer's gst-rtsp-server serving the H.264 video of an
MP4 at its frame rate (the file's own timestamps pace it), as one shared media that many clients
can watch at once. test/helpers/rtsp.ts gives it the video looped (ffmpeg -stream_loop, stream copy).

usage: rtsp-server.py PORT FILE.mp4 [PATH]
Prints "ready rtsp://127.0.0.1:PORT/PATH" on stdout once it listens; runs until killed.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    port, source = sys.argv[1], sys.argv[2]
    mount = "/" + (sys.argv[3] if len(sys.argv) > 3 else "cam").lstrip("/")
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{source}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )'
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{port}", file=sys.stderr)
        return 1
    print(f"ready rtsp://127.0.0.1:{port}{mount}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
