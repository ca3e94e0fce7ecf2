"""The classroom kit: checking a student's block against the library's."""
