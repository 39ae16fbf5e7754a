"""The embedded reference Realtime server (`s2s-eval serve`)."""

API_KEY_ENV = "S2S_SERVER_API_KEY"  # the key a server bound beyond loopback requires from its clients
