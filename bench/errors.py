"""The one error the bench reports as a line: what is wrong and what to do."""


class BenchError(RuntimeError):
    """The bench cannot go on; the message says what is wrong and what to do."""
