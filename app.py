"""Chatsmith: from raw chat data to a fine-tuned chat assistant, in one Gradio app.

This file only assembles the tabs and launches. Run `python app.py --help` for the options.
"""

from __future__ import annotations

import argparse
import ipaddress
import os

import gradio as gr
from starlette.middleware import Middleware

from core import access, serve
from core.inference.warm import warm_default
from core.workspace import Workspace
from tabs import chat, data, documents, evaluate, export, improve, journey, system, train
from tabs.common import AppContext

TABS = (data, train, export, chat, evaluate)
# Uploads above this are refused with HTTP 413 (and leave nothing behind); datasets rarely exceed it.
MAX_FILE_SIZE = os.environ.get("CHATSMITH_MAX_UPLOAD", "500mb")


def build_app(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title="Chatsmith") as demo:
        ctx.demo = demo
        gr.Markdown("# 🔨 Chatsmith")
        if ctx.locked_reason:
            gr.Markdown(f"🔒 {ctx.locked_reason} Training, export and Hub pushes are disabled.")
        panel = journey.build(ctx)
        card = improve.build(ctx)
        with gr.Tabs() as tabs:
            # Each tab's id is its module's name; `focus` lets the guided first run steer it.
            focus = {tab.__name__.rsplit(".", 1)[-1]: tab.build(ctx) for tab in TABS}
        journey.wire(ctx, panel, tabs, focus)
        improve.wire(ctx, card, tabs, focus)
        system.build(ctx)
    return demo


GRADIO_GAPS = {"en": {"common.complete": "Done"}, "zh": {"common.complete": "完成"}}
"""Keys Gradio's own status tracker reads but its tables lack (6.31): without them the page announces the
raw key "common.complete" when an event finishes."""


def translations() -> gr.I18n:
    merged: dict[str, dict[str, str]] = {}
    for module in (*TABS, documents, journey, improve, system):
        for locale, strings in module.STRINGS.items():
            merged.setdefault(locale, {}).update(strings)
    for locale, strings in GRADIO_GAPS.items():
        merged.setdefault(locale, {}).update(strings)
    return gr.I18n(**merged)


def exposure_lock(host: str, share: bool, auth: tuple[str, str] | None) -> str:
    """Why heavy features are refused: reachable from a network with no password
    (docs/reliability.md, "Web surface")."""
    if auth:
        return ""
    if share:
        return "The app is shared through a public link without --auth."
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    return "" if loopback else f"The app listens on {host}, reachable from the network, without --auth."


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """`USER:PASSWORD` as a pair; anything else (no colon, an empty user or password) is refused, because a
    half-given login would silently leave the app, or its API, open."""
    if text is None:
        return None
    user, colon, password = text.partition(":")
    if not colon or not user.strip() or not password:
        got = "no colon" if not colon else "an empty user" if not user.strip() else "an empty password"
        raise ValueError(f"--auth (or CHATSMITH_AUTH) must be USER:PASSWORD with neither part empty; "
                         f"the value given has {got}. The app did not start.")
    return user.strip(), password


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", help="data folder (default: $CHATSMITH_WORKSPACE or ./workspace)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="public gradio.live link (needs --auth)")
    parser.add_argument("--auth", default=os.environ.get("CHATSMITH_AUTH"), help="USER:PASSWORD")
    parser.add_argument("--no-warm", action="store_true",
                        help="do not load the default chat model once the page is up (it then loads, with its "
                             "time shown, at the first question)")
    args = parser.parse_args(argv)
    try:
        args.auth = parse_auth(args.auth)
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    auth = args.auth
    ctx = AppContext(Workspace.resolve(args.workspace),
                     locked_reason=exposure_lock(args.host, args.share, auth))
    backoff = access.Backoff()  # one per app: wrong passwords at /login and at /v1 count together
    demo = build_app(ctx).queue(default_concurrency_limit=4)
    demo.launch(
        server_name=args.host, server_port=args.port, share=args.share, auth=auth,
        max_file_size=MAX_FILE_SIZE, ssr_mode=False, i18n=translations(), show_error=False,
        app_kwargs={
            # The chat API (/v1) and its web page (/web/) on the same port, behind the same login.
            "routes": serve.app_routes(ctx.workspace, ctx.jobs, lambda: ctx.device().kind,
                                       dict([auth]) if auth else None, backoff),
            # Gradio's /login has no hook for failed attempts, and its event handlers cannot set cookies.
            "middleware": [Middleware(access.LoginBackoff, backoff=backoff),
                           Middleware(access.RaterCookie, key=ctx.signing_key())],
        },
        prevent_thread_lock=True,  # returns once the page is served, so the model loads after that
    )
    # Both after the page is served: detecting the device imports torch, which would hold the interpreter
    # lock for seconds while the page is being built.
    ctx.warm_up()
    if not args.no_warm:
        warm_default(ctx.workspace)  # the first question then finds the default model loaded
    demo.block_thread()


if __name__ == "__main__":
    main()
