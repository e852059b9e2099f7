"""Preference examples from the app's own ratings: arena votes and chat thumbs.

Contract: `from_arena(records)` takes `Arena.records()` (every voted battle with the server's model names)
and `from_feedback(rows)` takes `core.feedback.read(workspace)`; each returns `(examples, counts)`, the
`Collected` examples for `prepare_preferences` and counts for the report of what gave no example.

* An arena vote "a" or "b" is a pair: the winner's answer chosen, the other rejected, with the battle id,
  both models and the rater. A tie gives nothing (neither answer is preferred). "Both bad" gives two
  undesirable unpaired answers (KTO). Votes of flagged raters are left out; so are battles restored from
  a vote log (their prompt and answers were never logged) and multi-turn battles, whose answers are
  transcripts of several turns rather than one answer.
* A chat rating is stored with the conversation up to the rated answer: thumbs up is a desirable answer,
  thumbs down an undesirable one, and an answer edited into a better one is a pair (the edit chosen, the
  original rejected).
"""

from __future__ import annotations

import json
from collections import Counter

from core.data.preferences import Collected

ARENA_SOURCE, CHAT_SOURCE = "arena", "chat-feedback"


def from_arena(records: list[dict]) -> tuple[list[Collected], dict]:
    examples, counts = [], Counter()
    for record in records:
        counts["votes"] += 1
        prompt = json.loads(record["prompt"]) if isinstance(record["prompt"], str) else record["prompt"]
        if record["flagged"]:
            counts["flagged_rater_votes"] += 1
        elif record["winner"] == "tie":
            counts["ties"] += 1
        elif not prompt:
            counts["restored_without_text"] += 1
        elif len(prompt) > 1 and prompt[-2]["role"] == "user":
            counts["multi_turn"] += 1
        elif record["winner"] == "both_bad":
            counts["both_bad"] += 1
            for side in ("a", "b"):
                origin = {"battle_id": record["battle_id"], "model": record[f"model_{side}"], "rater": record["rater"]}
                examples.append(Collected(ARENA_SOURCE, origin, ("unpaired", prompt, record[f"answer_{side}"], False)))
        else:
            won, lost = ("a", "b") if record["winner"] == "a" else ("b", "a")
            origin = {"battle_id": record["battle_id"], "model_chosen": record[f"model_{won}"],
                      "model_rejected": record[f"model_{lost}"], "rater": record["rater"]}
            examples.append(Collected(ARENA_SOURCE, origin,
                                      ("pair", prompt, record[f"answer_{won}"], record[f"answer_{lost}"])))
    return examples, dict(counts)


def from_feedback(rows: list[dict]) -> tuple[list[Collected], dict]:
    examples, counts = [], Counter()
    for row in rows:
        origin = {"feedback_id": row["id"], "model": row.get("model", ""), "rating": row.get("rating")}
        if row.get("edit"):
            counts["edited_answers"] += 1
            examples.append(Collected(CHAT_SOURCE, origin, ("pair", row["prompt"], row["edit"], row["answer"])))
        elif row.get("rating") in ("up", "down"):
            counts[f"thumbs_{row['rating']}"] += 1
            examples.append(Collected(CHAT_SOURCE, origin,
                                      ("unpaired", row["prompt"], row["answer"], row["rating"] == "up")))
    return examples, dict(counts)
