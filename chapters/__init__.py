"""One runnable module per chapter of the book: `python -m chapters.<name> --help`."""
