"""A stand-in for the ``spaces`` package of Hugging Face Spaces (on ZeroGPU hardware ``spaces.GPU`` attaches a GPU
for the duration of a call): this one writes a line to ``$FAKE_SPACES_LOG`` for every call it wraps."""

import functools
import os


def GPU(fn=None, **options):  # noqa: N802 - the real package's name
    def wrap(function):
        @functools.wraps(function)
        def call(*args, **kwargs):
            with open(os.environ["FAKE_SPACES_LOG"], "a") as log:
                log.write(f"{function.__name__}\n")
            return function(*args, **kwargs)

        return call

    return wrap(fn) if fn is not None else wrap
