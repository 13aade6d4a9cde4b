"""llama-cpp-python's OpenAI-compatible server with a cap on reply length.

Used by scripts/demo-local-model.sh. A small base model rarely stops on its
own, and agent-runner (like upstream's) sends no max_tokens, so a reply could
run until the context is full. This caps every chat completion that asks for
no limit at LOCAL_MODEL_MAX_TOKENS (default 160) tokens, then hands over to
the stock server (same command-line options as `python -m llama_cpp.server`).
"""

import os
import sys

import llama_cpp
from llama_cpp.server.__main__ import main

CAP = int(os.environ.get("LOCAL_MODEL_MAX_TOKENS", "160"))
_create = llama_cpp.Llama.create_chat_completion


def _capped(self, *args, **kwargs):
    if not kwargs.get("max_tokens"):
        kwargs["max_tokens"] = CAP
    return _create(self, *args, **kwargs)


llama_cpp.Llama.create_chat_completion = _capped

if __name__ == "__main__":
    sys.exit(main())
