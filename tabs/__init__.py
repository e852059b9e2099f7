"""The UI: one module per tab, each a thin layer that wires Gradio widgets to `core/`.

Contract of a tab module: `STRINGS` (English and Simplified Chinese labels, keys prefixed with the tab's
name) and `build(ctx)`, called inside the app's `gr.Blocks`, which lays out widgets first and wires their
events at the bottom. Tabs import no torch or transformers at module import time.
"""
