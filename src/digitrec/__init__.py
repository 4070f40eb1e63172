"""digitrec: handwritten digit recognition — the paper's CNN, transfer learning, and a fast, deployable reader."""
__version__ = "0.1.0"
