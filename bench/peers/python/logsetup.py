"""Logging for the Python original: loguru, serialized, to stdout.

Importing this module makes loguru the process's only log output: one JSON
object per line on stdout (loguru's serialize=True shape: {"text": ...,
"record": {...}}). uvicorn's own loggers (uvicorn, uvicorn.error,
uvicorn.access) reach it through LoguruHandler, which uvicorn-log.json
installs for them via uvicorn's --log-config, in the supervising process and
in every worker alike.
"""

import logging
import sys

from loguru import logger

# enqueue=True: each process's lines go through a queue to a writer thread
# (loguru's advice when several processes share one output, as uvicorn's
# workers share stdout), as in the Python original that the benchmark has
# always measured. It costs the peer throughput: without it this peer served
# ~1.6x more requests per second under wrk on the 2-CPU bench machine.
logger.remove()
logger.add(sys.stdout, level="INFO", serialize=True, enqueue=True)


class LoguruHandler(logging.Handler):
    """A stdlib logging handler that hands each record to loguru, keeping its
    level and pointing loguru at the code that logged it (not at logging's
    internals)."""

    def emit(self, record):
        try:
            level = logger.level(record.levelname).name
        except ValueError:  # a level loguru does not know by name
            level = record.levelno
        depth = 0
        frame = sys._getframe(0)
        # walk out of this handler and the logging package to the caller
        while frame is not None and (frame.f_code.co_filename == __file__
                                     or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())
