"""Chatsmith's logic: data, training, export, chat and evaluation, with no UI in it.

Nothing under `core/` imports gradio. Heavy libraries (torch, transformers, peft, trl, llama_cpp) are
imported inside the functions that need them, so importing a `core` module stays cheap.
"""
