"""s2s-eval: evaluate and benchmark speech-to-speech models over Realtime WebSocket sessions."""

__version__ = "0.1.0"

__all__ = ["__version__"]
