"""Evaluate stage: blind battles with a leaderboard, automatic metrics, and run reports.

* `arena`     — battles and votes in the workspace's SQLite database (docs/reliability.md, "Ratings");
* `vote_log`  — votes as JSONL / CSV lines: a vote log read back, exports, a votes file;
* `arena_host`— the app's one arena, opened at start-up, its Hub votes restored in the background;
* `hub_votes` — on a Space, the vote log mirrored to a Hub dataset and restored at start;
* `ratings`   — online Elo and Bradley-Terry with bootstrap CIs, computed from votes alone;
* `verdicts`  — style-controlled Bradley-Terry, per-pair verdicts in words, votes still needed;
* `preference_check` — a preference run's automatic before/after check (held-out pairs, forgetting);
* `contenders`— which models can fight, and streaming both answers of a battle;
* `names`     — the names people gave the contenders, shown instead of their keys;
* `prompts`   — prompt sets: a dataset's validation split, a JSONL of questions, the shipped set;
* `metrics`   — held-out loss, ROUGE-L, BLEU, length, empty and looping rates (a job target);
* `report`    — a run's report (Markdown, HTML, loss-curve PNG) and a multi-run write-up.

Run `python -m core.evaluate --help` for the command line.
"""
