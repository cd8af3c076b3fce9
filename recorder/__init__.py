"""Recording of published tracks without transcoding, and the replay catalogue (not built yet).

It will consume packets through :class:`sfu.forwarding.PacketObserver`, never aiortc objects.
"""
