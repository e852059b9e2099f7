"""The arena as the tab drives it: start a blind battle, stream it, vote, reveal; plus the tables.

Everything here takes plain values and returns plain values (no gradio), so the page holds nothing but a
battle id and an idempotency key, and tests can drive a whole battle without a browser. Raters are the
Hugging Face username when the app runs with OAuth (a Space), else the `--auth` login, else the anonymous
id in the browser's signed rater cookie (`core.access`), so a page reload is still the same rater; on a
Space (`SPACE_ID` set) anonymous votes are refused, and `sign_in_problem` says when sign-in itself
cannot work there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from core.errors import BadInputError
from core.evaluate import ratings, verdicts
from core.evaluate.arena import Arena
from core.evaluate.contenders import find_contender, list_contenders, open_pair, stream_pair
from core.evaluate.names import display_names
from core.evaluate.prompts import PromptItem, load_prompt_set, pick
from core.workspace import Workspace

SHIPPED_SOURCE = "shipped"


def rater_id(username: str | None, browser: str | None, login: str | None = None) -> str:
    """Who votes: `hf:<username>` when signed in with Hugging Face, `login:<user>` behind `--auth`, else
    `local:<browser>` (the signed cookie's id); anonymous ids are refused on a public Space."""
    if username:
        return f"hf:{username}"
    if os.environ.get("SPACE_ID"):
        raise BadInputError("Votes on a public Space count only for logged-in raters.",
                            "Sign in with Hugging Face (the button at the top), then vote.")
    if login:
        return f"login:{login}"
    if not browser:
        raise BadInputError("This browser sent no valid rater cookie, so its votes cannot be told apart.",
                            "Reload the page with cookies allowed for this site, then vote.")
    return f"local:{browser}"


def sign_in_problem() -> str:
    """Why "Sign in with Hugging Face" cannot work on this Space ("" when it can). gradio refuses to start
    an app with a login button when the Space lacks OAuth (`hf_oauth: true` in the README's front-matter,
    which sets OAUTH_CLIENT_ID) or its `gradio[oauth]` libraries, so the tab shows this instead."""
    if os.environ.get("SYSTEM") == "spaces" and not os.environ.get("OAUTH_CLIENT_ID"):
        return ("Sign-in with Hugging Face is not enabled on this Space, so no vote can count: add "
                "`hf_oauth: true` to the README's front-matter.")
    missing = [name for name in ("authlib", "itsdangerous") if importlib.util.find_spec(name) is None]
    if missing:
        return (f"Sign-in with Hugging Face needs `gradio[oauth]` ({', '.join(missing)} missing), so no vote can "
                "count: add it to requirements.txt.")
    return ""


def default_contenders(keys: list[str]) -> list[str]:
    """The question most people ask first: the default model against the newest fine-tune."""
    runs = [key for key in keys if key.startswith("run/")]
    return [keys[0], runs[-1]] if keys and runs else keys[:2]


def prompt_sources(workspace: Workspace) -> list[str]:
    """"shipped", then each dataset version that has a validation split."""
    versions = sorted(p.parent.name for p in workspace.datasets.glob("*/validation.jsonl"))
    return [SHIPPED_SOURCE, *versions]


def choose_prompt(workspace: Workspace, typed: str, source: str | None, upload: str | None) -> PromptItem:
    """The typed prompt if any, else a random item from the uploaded JSONL or the chosen set."""
    if typed and typed.strip():
        return PromptItem(id="typed", turns=(typed.strip(),))
    if upload:
        return pick(load_prompt_set(Path(upload)))
    if source and source != SHIPPED_SOURCE:
        return pick(load_prompt_set(workspace.named(workspace.datasets, source, "dataset")))
    return pick(load_prompt_set(SHIPPED_SOURCE))


def start_battle(arena: Arena, workspace: Workspace, contenders: list[str], item: PromptItem,
                 rater: str, settings) -> dict:
    """Record a new battle server-side; the page gets its id and a fresh idempotency key only."""
    known = list_contenders(workspace)
    unknown = [key for key in contenders if key not in known and find_contender(workspace, key) is None]
    if unknown:
        raise BadInputError(f"'{unknown[0]}' is not a model here.", "Refresh the contender list.")
    messages = [*item.history, *({"role": "user", "content": turn} for turn in item.turns)]
    battle_id = arena.new_battle(contenders, messages, rater, settings=_settings_record(settings, item))
    return {"battle_id": battle_id, "key": uuid.uuid4().hex, "item": item}


def stream_battle(arena: Arena, workspace: Workspace, battle_id: str, item: PromptItem,
                  settings) -> Iterator[tuple[str, str]]:
    """Both answers as they grow; saved to the battle record when both are done."""
    backends = open_pair(workspace, arena.contenders_of(battle_id))
    answer_a = answer_b = ""
    for answer_a, answer_b in stream_pair(backends, item, settings):
        yield answer_a, answer_b
    arena.save_answers(battle_id, answer_a, answer_b)


def reveal_text(view: dict, workspace: Workspace | None = None) -> str:
    """Who was A and who was B, by the names people gave them when `workspace` is given."""
    outcome = {"a": "A wins", "b": "B wins", "tie": "Tie", "both_bad": "Both bad"}[view["winner"]]
    names = _names(workspace, [view["model_a"], view["model_b"]])
    return f"**{outcome}.** A was **{names[view['model_a']]}**, B was **{names[view['model_b']]}**."


CI_MIN_BATTLES = 5
"""Below this many battles a model's bootstrap interval is too narrow to mean anything: with one vote
every resample is the same vote, so the interval collapses to a point that looks certain."""


def votes_text(count: int) -> str:
    return f"{count} vote" if count == 1 else f"{count:,} votes"


def interval_text(row: dict) -> str:
    """The 95 % interval of a leaderboard row, or why there is none yet."""
    if row["battles"] < CI_MIN_BATTLES:
        return f"not enough votes ({row['battles']} of {CI_MIN_BATTLES} battles)"
    return f"{row['ci_low']} – {row['ci_high']}"


def leaderboard_view(arena: Arena, rounds: int = 500, workspace: Workspace | None = None) -> dict:
    """Rows for the leaderboard table (the model's key in the last column), matrices, and the "more votes
    needed" lines; models by the names people gave them when `workspace` is given."""
    votes = arena.votes()
    names = _names(workspace, [model for vote in votes for model in (vote.model_a, vote.model_b)])
    keys = {name: key for key, name in names.items()}
    votes = [ratings.Vote(names[v.model_a], names[v.model_b], v.winner, v.rater) for v in votes]
    rows = ratings.leaderboard(votes, rounds=rounds)
    models, win_rate, battles = ratings.pair_matrices(votes) if votes else ([], [], [])
    return {"rows": rows, "votes": len(votes),
            "table": [[r["model"], r["bt"], interval_text(r), r["elo"], r["battles"],
                       r["wins"], r["losses"], r["ties"], r["both_bad"], keys[r["model"]]] for r in rows],
            "win_rate": [[m, *("—" if v != v else f"{v:.0%}" for v in row)] for m, row in zip(models, win_rate)],
            "battles": [[m, *(int(v) for v in row)] for m, row in zip(models, battles)], "models": models,
            "advice": ratings.separation_text(ratings.votes_to_separate(rows, len(votes))),
            "verdicts": [verdict["text"] for verdict in verdicts.pair_verdicts(votes)]}


def style_view(arena: Arena, rounds: int = 200, workspace: Workspace | None = None) -> dict:
    """The leaderboard with style held equal, beside the plain one, and what style is worth."""
    records = arena.records()
    names = _names(workspace, [record[side] for record in records for side in ("model_a", "model_b")])
    records = [{**record, "model_a": names[record["model_a"]], "model_b": names[record["model_b"]]}
               for record in records]
    fitted = verdicts.style_controlled(records, rounds=rounds)
    if not fitted:
        return {"table": [], "text": ""}
    votes = [ratings.Vote(r["model_a"], r["model_b"], r["winner"], r["rater"]) for r in records if not r["flagged"]]
    plain = {row["model"]: row for row in ratings.leaderboard(votes, rounds=rounds)}
    table = [[row["model"], row["rating"], f"{row['ci_low']} – {row['ci_high']}", plain[row["model"]]["bt"]]
             for row in fitted["rows"] if row["model"] in plain]
    effects = ", ".join(f"{name} {points:+.0f}" for name, points in fitted["coefficients"].items())
    return {"table": table, "text": "Style effects, in rating points per standard deviation of the difference "
                                    f"between the two answers: {effects}. A positive length effect means raters "
                                    "favour the longer answer; the style-controlled rating holds it equal."}


def metrics_results(workspace: Workspace) -> list[dict]:
    """Every finished metrics job, newest first: its folder name and summary."""
    results = []
    for path in workspace.jobs.glob("*/metrics.json"):
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        results.append({"job": path.parent.name, "model": result["model"].get("id") or result["model"].get("label"),
                        "data": Path(str(result.get("data", ""))).name, "summary": result["summary"],
                        "samples": result.get("samples", []), "finished": result.get("finished", 0.0),
                        "notes": result.get("notes", [])})
    return sorted(results, key=lambda r: r["finished"], reverse=True)


def new_job_folder(workspace: Workspace) -> Path:
    return workspace.jobs / f"metrics-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def _names(workspace: Workspace | None, keys: list[str]) -> dict[str, str]:
    """Each key's readable name, or the key itself without a workspace to read the names from."""
    return display_names(workspace, keys) if workspace is not None else {key: key for key in keys}


def _settings_record(settings, item: PromptItem) -> dict:
    record = {key: getattr(settings, key) for key in ("max_new_tokens", "temperature", "top_p", "seed")
              if hasattr(settings, key)}
    return {**record, "prompt_id": item.id}
