"""Turn an exception from deep inside MXNet into text for a one-line error."""


def first_line(err):
    """The first line of `err`'s message, or its type's name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
