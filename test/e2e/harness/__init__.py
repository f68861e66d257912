"""End-to-end test harness for Janus plugins (see test/e2e/README.md).

* ``harness.janus``  -- ``JanusServer``: private, throw-away Janus instance.
* ``harness.client`` -- ``JanusSession``/``Handle``: Janus HTTP API client with
  long-poll event routing; ``admin_request``/``admin_call`` for the Admin API.
* ``harness.peer``   -- ``TonePeer``: aiortc participant sending a sine tone
  and recording what it receives.
* ``harness.audio``  -- tone/level measurements (Goertzel, FFT peaks, RMS).

Submodules are imported lazily by the tests; importing ``harness`` itself
pulls in nothing heavy.
"""
