"""Loaded by llama.cpp's converter in tests/test_architectures.py only (that test puts this folder on
PYTHONPATH and sets CHATSMITH_TEST_PRE_TOKENIZER for the Qwen2 case).

The tiny Qwen2 model borrows the default model's vocabulary, and transformers 5 gives every qwen2 model
Qwen's pre-tokenizer whatever its tokenizer_config says. The converter names a pre-tokenizer by hashing
a sample's token ids, and no released model has this vocabulary, so it cannot: this names it as
transformers runs it ("qwen2"). The test then checks that llama.cpp and transformers give the same ids.
"""

import os

if os.environ.get("CHATSMITH_TEST_PRE_TOKENIZER"):
    from conversion import base

    _hashed = base.TextModel.get_vocab_base_pre

    def _named(self, tokenizer):
        try:
            return _hashed(self, tokenizer)
        except NotImplementedError:
            return os.environ["CHATSMITH_TEST_PRE_TOKENIZER"]

    base.TextModel.get_vocab_base_pre = _named
