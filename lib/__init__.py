"""WARM and WARP, reproduced: the library behind the notebooks (see README.md).

Importing it silences, narrowly, two messages that every run printed and that say nothing about
this code: bitsandbytes' note that an optional CPU kernel package is not installed (the float
NF4 kernel is used instead, `lib.models.models.exact_4bit_on_cpu`), and transformers' deprecation of
`is_gradient_checkpointing`, which peft still calls. Every other warning still shows.
"""

import logging
import warnings


class _OptionalKernelNote(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to load CPU gemm_4bit_forward")


logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_OptionalKernelNote())
warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
