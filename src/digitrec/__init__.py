"""digitrec: handwritten digit recognition — the paper's CNN, transfer learning, and a fast, deployable reader.

    import digitrec
    digitrec.Reader().read("photo.jpg")   # {"file": "photo.jpg", "text": "4096", "digits": [...]}
"""
__version__ = "0.1.0"
__all__ = ["Reader", "__version__"]


def __getattr__(name: str):
    if name == "Reader":  # imported on first use: `import digitrec` stays light (no torch, no PIL)
        from .reader import Reader

        return Reader
    raise AttributeError(f"module 'digitrec' has no attribute {name!r}")
