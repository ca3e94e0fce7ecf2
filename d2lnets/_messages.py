"""Turn an exception from deep inside MXNet into text for a one-line error."""


def first_line(err):
    """The first line of `err`'s message, or its type's name when it has none.

    MXNet's errors may start with a C++ stack, "Traceback (most recent call
    last):" and indented frames; then the first line after the stack is taken,
    which is the one that says what went wrong.
    """
    lines = [line for line in str(err).splitlines() if line.strip()]
    if lines and lines[0].startswith('Traceback'):
        told = [line for line in lines[1:] if not line[0].isspace()]
        lines = told or lines
    return lines[0].strip() if lines else type(err).__name__
