"""The one exception type users see: the CLI prints it as one line and exits 2, the server answers 4xx."""


class DigitrecError(Exception):
    """A problem with the user's input (a path, a file, a flag value), not a bug in digitrec."""
