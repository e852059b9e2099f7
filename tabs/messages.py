"""Every message the tabs compute (job lines and titles, presets, the Data report, the Train log, the round-trip
report and recommendation, Chat's stats line, model names, the leaderboard and verdicts, capability notes,
errors: their entries in tabs/messages_errors.py), in English and Simplified Chinese, in one table.

Why the server formats them rather than the browser: Gradio's client-side translation (`gr.I18n` with
`I18nData` keys, what `tabs.common.t` uses for static labels) swaps a `__i18n__{"key": ...}` marker in a
component's label, info, placeholder, title or value for the string of that key, and nothing more (as the
installed Gradio's frontend bundle reads): the marker carries no parameters, only the first marker in a
string is replaced, and table headers, cells and choice labels are not among the props it translates. Our
messages take parameters (`{steps}`, `{name}`) whose place differs between English and
Chinese, and API clients would receive the raw markers. So a handler takes `request: gr.Request` (Gradio
fills it in; the API signature does not change), reads the browser's `accept-language` with `locale_of`,
and formats the message with `say`: one key, one format string per language, the same placeholders in
each (tests/test_messages.py checks that). English output is the text the app showed before, byte for
byte; anything without a Chinese entry (a job's own detail, a library's error text) stays as written.
core/ stays free of this: it raises typed errors and writes job messages in English, as the API and the
CLI show them.
"""

from __future__ import annotations

import functools
import re
import string
from typing import Any

from core.errors import ChatsmithError, describe, details
from tabs.messages_errors import ERRORS

LOCALES = ("en", "zh")

MESSAGES: dict[str, dict[str, str]] = {
    # Job states and the detail lines the job runner and the training job write.
    "job.queued": {"en": "queued", "zh": "排队中"},
    "job.running": {"en": "running", "zh": "运行中"},
    "job.succeeded": {"en": "succeeded", "zh": "已完成"},
    "job.failed": {"en": "failed", "zh": "失败"},
    "job.stopped": {"en": "stopped", "zh": "已停止"},
    "job.interrupted": {"en": "interrupted", "zh": "已中断"},
    "job.starting": {"en": "Starting…", "zh": "正在启动…"},
    "job.running_detail": {"en": "Running…", "zh": "运行中…"},
    "job.done": {"en": "Done.", "zh": "完成。"},
    "job.stopped_detail": {"en": "Stopped.", "zh": "已停止。"},
    "job.failed_detail": {"en": "Failed.", "zh": "失败。"},
    "job.stopped_queued": {"en": "Stopped while queued.", "zh": "排队时已停止。"},
    "job.waiting": {"en": "Queued: waiting for the running job to release the accelerator.",
                    "zh": "排队中：等待正在运行的任务释放加速器。"},
    "train.done": {"en": "Done: {steps} steps in {seconds} s; adapter saved.",
                   "zh": "完成：{steps} 步，用时 {seconds} 秒；适配器已保存。"},
    "train.stopped_at": {"en": "Stopped at step {step}: checkpoint and adapter saved; Resume continues it.",
                         "zh": "已在第 {step} 步停止：检查点和适配器已保存；点“续训”可继续。"},
    "train.step": {"en": "step {step}/{total}", "zh": "第 {step}/{total} 步"},
    "train.resumes": {"en": "Resumes from {checkpoint} (step {step}).", "zh": "从 {checkpoint}（第 {step} 步）继续。"},
    "train.all_done": {"en": "The run finished all its steps; start a new run to train further.",
                       "zh": "这次运行已完成全部步数；要继续训练，请开始一次新的运行。"},
    "train.no_checkpoint": {"en": "No complete checkpoint was saved before the run ended; start it again.",
                            "zh": "运行结束前没有保存完整的检查点；请重新开始。"},
    "train.weights_only": {"en": "{checkpoint} holds only model weights (no optimizer state), so training cannot "
                                 "continue exactly; start a new run.",
                           "zh": "{checkpoint} 只有模型权重（没有优化器状态），无法精确续训；请开始一次新的运行。"},
    "train.elapsed": {"en": "elapsed {clock}", "zh": "已用时 {clock}"},
    "train.remaining": {"en": "remaining ~{clock}", "zh": "剩余约 {clock}"},
    "train.speed": {"en": "{speed} tokens/s", "zh": "{speed} 词元/秒"},
    # The Data tab's lines and its report (core/data/report.py writes it in English; tabs translate it line by
    # line and cell by cell with `translated_markdown`).
    "data.newest": {"en": "📂 The newest saved dataset, `{name}`; **Run** prepares a new one.",
                    "zh": "📂 最新保存的数据集：`{name}`；点 **运行** 会准备一个新的。"},
    "data.kept": {"en": "✅ {kept} conversations kept.", "zh": "✅ 保留了 {kept} 条对话。"},
    "data.run_first": {"en": "❌ Run the preparation first.", "zh": "❌ 请先运行准备步骤。"},
    "data.loading_tokenizer": {"en": "Loading the tokenizer…", "zh": "正在加载分词器…"},
    "report.title": {"en": "# Data report: {name}", "zh": "# 数据报告：{name}"},
    "report.summary": {"en": "**{kept} conversations kept** of {rows} rows (train {train} · validation {validation}); "
                             "{duplicates} exact and {near} near duplicates removed.",
                       "zh": "**保留 {kept} 条对话**，共 {rows} 行（训练 {train} · 验证 {validation}）；"
                             "去除完全重复 {duplicates} 条、近似重复 {near} 条。"},
    "report.file": {"en": "file", "zh": "文件"},
    "report.format": {"en": "format", "zh": "格式"},
    "report.rows": {"en": "rows", "zh": "行数"},
    "report.evidence": {"en": "evidence", "zh": "依据"},
    "report.source": {"en": "source", "zh": "来源"},
    "report.kept": {"en": "kept", "zh": "保留"},
    "report.dropped_because": {"en": "dropped because", "zh": "丢弃原因"},
    "report.count": {"en": "count", "zh": "数量"},
    "report.examples": {"en": "examples (file:line — why)", "zh": "示例（文件:行 — 原因）"},
    "report.unmapped": {"en": "❓ map columns below", "zh": "❓ 请在下方映射列"},
    "report.repaired": {"en": "Repaired (kept): {fixes}", "zh": "已修复（保留）：{fixes}"},
    "report.roles": {"en": "Roles: {roles}. Turns per conversation: {turns}.", "zh": "角色：{roles}。每条对话的轮数：{turns}。"},
    "report.length": {"en": "Length in {unit}: median {median}, max {max}, cutoff {cutoff}.",
                      "zh": "长度（{unit}）：中位数 {median}，最大 {max}，截断 {cutoff}。"},
    "report.tokens_of": {"en": "tokens ({model})", "zh": "{model} 词元"},
    "report.estimate": {"en": "estimated tokens (characters / 4)", "zh": "估算词元，字符数 / 4"},
    "report.none": {"en": "none", "zh": "无"},
    "reason.not_a_record": {"en": "row is not an object", "zh": "这一行不是对象"},
    "reason.other_format": {"en": "row in another format than its file (mixed formats)",
                            "zh": "这一行的格式与文件不同（格式混杂）"},
    "reason.missing_field": {"en": "a required field is missing", "zh": "缺少必需字段"},
    "reason.bad_field_type": {"en": "a field has the wrong type", "zh": "字段类型不对"},
    "reason.unknown_role": {"en": "unknown or missing role", "zh": "角色未知或缺失"},
    "reason.empty_turn": {"en": "empty turn", "zh": "空的一轮"},
    "reason.same_role_turns": {"en": "two turns of one speaker in a row", "zh": "同一说话人连续两轮"},
    "reason.starts_with_assistant": {"en": "does not start with the user", "zh": "不是以用户开头"},
    "reason.ends_without_assistant": {"en": "does not end with the assistant", "zh": "不是以助手结尾"},
    "reason.not_alternating": {"en": "turns do not alternate", "zh": "各轮没有交替"},
    "reason.no_assistant": {"en": "no assistant turn", "zh": "没有助手的回答"},
    "reason.unfilled_placeholder": {"en": "placeholder with no value", "zh": "占位符没有值"},
    "reason.too_long": {"en": "longer than the token limit", "zh": "超过词元上限"},
    "reason.over_cap": {"en": "over its source's cap", "zh": "超过该来源的上限"},
    "reason.duplicate": {"en": "exact duplicate", "zh": "完全重复"},
    "reason.near_duplicate": {"en": "near duplicate", "zh": "近似重复"},
    # How a file's format was recognised (core/data/formats.py, preference_formats.py); the mixed form first,
    # since the plain one would also match it.
    "evidence.mixed": {"en": "{hits} of {total} sampled rows {what}; mixed with {others} (those rows are dropped)",
                       "zh": "抽样的 {total} 行中有 {hits} 行{what}；混有 {others}（这些行会被丢弃）"},
    "evidence.found": {"en": "{hits} of {total} sampled rows {what}", "zh": "抽样的 {total} 行中有 {hits} 行{what}"},
    "evidence.none": {"en": "no known format in {total} sampled rows; fields seen: {fields}",
                      "zh": "抽样的 {total} 行中没有已知格式；见到的字段：{fields}"},
    "evidence.alpaca": {"en": "have `instruction` and `output` fields (Alpaca)",
                        "zh": "含 `instruction` 和 `output` 字段（Alpaca）"},
    "evidence.sharegpt": {"en": "have `conversations`, a list of turns (ShareGPT)",
                          "zh": "含 `conversations`，即各轮对话的列表（ShareGPT）"},
    "evidence.ultrachat": {"en": "have `data`, a list of alternating texts (UltraChat)",
                           "zh": "含 `data`，即交替发言的文本列表（UltraChat）"},
    "evidence.messages": {"en": "have `messages`, a list of role/content turns (OpenAI / HF messages)",
                          "zh": "含 `messages`，即 role/content 各轮的列表（OpenAI / HF messages）"},
    "evidence.pairs": {"en": "have `prompt`, `chosen` and `rejected` (UltraFeedback-binarized / TRL preference pairs)",
                       "zh": "含 `prompt`、`chosen` 和 `rejected`（UltraFeedback-binarized / TRL 偏好对）"},
    "evidence.hh": {"en": "have `chosen` and `rejected` Human/Assistant transcripts (Anthropic HH)",
                    "zh": "含 `chosen` 和 `rejected` 的 Human/Assistant 对话记录（Anthropic HH）"},
    "evidence.kto": {"en": "have `prompt`, `completion` and `label` (KTO, unpaired)",
                     "zh": "含 `prompt`、`completion` 和 `label`（KTO，不成对）"},
    # Export job titles (core keeps the English title with the job; it is translated when shown).
    "export.adapter": {"en": "Adapter package · {run}", "zh": "适配器打包 · {run}"},
    "export.merge": {"en": "Merge · {run}", "zh": "合并 · {run}"},
    "export.gguf": {"en": "GGUF {quants} · {run}", "zh": "GGUF {quants} · {run}"},
    "export.roundtrip": {"en": "Round-trip check · {run}", "zh": "往返检查 · {run}"},
    "export.fuse": {"en": "Fuse {runs}", "zh": "融合 {runs}"},
    "export.space": {"en": "Space ({target}) · {run}", "zh": "Space（{target}）· {run}"},
    "export.backup": {"en": "Backup · {run}", "zh": "备份 · {run}"},
    "export.restore": {"en": "Restore backup", "zh": "恢复备份"},
    # Presets (Train) and the notes beside them.
    "preset.cpu": {"en": "CPU · default model", "zh": "CPU · 默认模型"},
    "preset.apple": {"en": "Apple silicon · ≤ 1.5B LoRA", "zh": "Apple 芯片 · ≤ 1.5B LoRA"},
    "preset.gpu": {"en": "RTX 4090 24 GB · 7B QLoRA", "zh": "RTX 4090 24 GB 显卡 · 7B QLoRA"},
    "preset.lora_cpu": {"en": "LoRA in fp32 on the CPU: fine for small models, slow above ~1B.",
                        "zh": "在 CPU 上以 fp32 做 LoRA：小模型没问题，超过约 1B 参数会很慢。"},
    "preset.lora_mps": {"en": "LoRA in fp16 or fp32 on Apple silicon.", "zh": "在 Apple 芯片上以 fp16 或 fp32 做 LoRA。"},
    "preset.large_on_cpu": {"en": "Models above {billions}B parameters train very slowly on a CPU; pick a small "
                                  "model or use a GPU.",
                            "zh": "超过 {billions}B 参数的模型在 CPU 上训练非常慢；请选小模型或使用 GPU。"},
    "preset.needs_cuda": {"en": "The 7B QLoRA preset needs an NVIDIA GPU with ~20 GB of VRAM; this machine "
                                "trains on {kind}.",
                          "zh": "7B QLoRA 预设需要约 20 GB 显存的 NVIDIA 显卡；本机用 {kind} 训练。"},
    # What this machine cannot do, said beside the control it greys out (core/devices.py).
    "gate.offline": {"en": "Offline (HF_HUB_OFFLINE=1): Hub pushes are disabled; everything else works.",
                     "zh": "离线（HF_HUB_OFFLINE=1）：已停用推送到 Hub；其他功能都可用。"},
    "gate.no_llama": {"en": "llama-cpp-python is not installed; run the README's set-up command.",
                      "zh": "未安装 llama-cpp-python；请运行 README 中的安装命令。"},
    "gate.no_bnb": {"en": "bitsandbytes is not installed; run the README's set-up command.",
                    "zh": "未安装 bitsandbytes；请运行 README 中的安装命令。"},
    "gate.fp16": {"en": "fp16 mixed precision needs a GPU; the CPU trains in fp32.",
                  "zh": "fp16 混合精度需要 GPU；CPU 上以 fp32 训练。"},
    "gate.bf16_cpu": {"en": "bf16 is ~10x slower than fp32 on CPUs without native bf16; training uses fp32.",
                      "zh": "在没有原生 bf16 的 CPU 上，bf16 比 fp32 慢约 10 倍；训练使用 fp32。"},
    "gate.bf16_mps": {"en": "bf16 is not used on Apple silicon here; fp16 or fp32 instead.",
                      "zh": "这里在 Apple 芯片上不用 bf16，改用 fp16 或 fp32。"},
    "gate.bf16_cuda": {"en": "This GPU has no native bf16 (needs compute capability 8.0+); fp16 is used instead.",
                       "zh": "这块 GPU 没有原生 bf16（需要计算能力 8.0 以上）；改用 fp16。"},
    "gate.qlora_mps": {"en": "4-bit QLoRA is not offered on Apple silicon: the set-up installs bitsandbytes on Linux "
                             "and Windows only, and its Apple backend is untested here. Train plain LoRA (models up "
                             "to ~1.5B fit), or QLoRA on an NVIDIA GPU.",
                       "zh": "Apple 芯片上不提供 4 位 QLoRA：安装步骤只在 Linux 和 Windows 上安装 bitsandbytes，其 Apple "
                             "后端在这里也未经测试。请训练普通 LoRA（约 1.5B 以内的模型放得下），或在 NVIDIA GPU 上用 QLoRA。"},
    "gate.qlora_cpu": {"en": "4-bit QLoRA is offered on NVIDIA GPUs only. bitsandbytes runs it on a CPU too, but on "
                             "the default model it trained at 0.6-0.9× the speed of fp32 LoRA and peaked 5-21 % higher in "
                             "RAM, not lower: the weights are a small part of what training holds, and loading "
                             "quantises from full precision (bench/qlora_cpu_bench.py). Train plain LoRA in fp32 here.",
                       "zh": "4 位 QLoRA 只在 NVIDIA GPU 上提供。bitsandbytes 在 CPU 上也能运行它，但在默认模型上，它的训练速度"
                             "只有 fp32 LoRA 的 0.6–0.9 倍，内存峰值还高 5–21%，而不是更低：权重只占训练所需内存的一小部分，而且加载时"
                             "要从全精度量化（bench/qlora_cpu_bench.py）。这里请用 fp32 训练普通 LoRA。"},
    # The quantisation recommendation (Export).
    "quant.recommended": {"en": "recommended", "zh": "推荐"},
    "quant.small": {"en": "Q8_0: this model is small ({millions}M parameters); {why}small models lose much more "
                          "to 4-bit (SmolLM2-135M answered nonsense in Q4_K_M). Q8_0 is nearly lossless and half of "
                          "F16; the round-trip check confirms it or recommends F16.",
                    "zh": "Q8_0：这个模型很小（{millions}M 参数）；{why}小模型在 4 位量化下损失大得多"
                          "（SmolLM2-135M 在 Q4_K_M 下答非所问）。Q8_0 几乎无损，大小是 F16 的一半；"
                          "往返检查会确认它，或改为推荐 F16。"},
    "quant.narrow": {"en": "{narrow} of {matrices} weight matrices are not a multiple of 256 wide, so K-quants "
                           "fall back to older types there; ",
                     "zh": "{matrices} 个权重矩阵中有 {narrow} 个宽度不是 256 的倍数，K 量化在那里会退回旧类型；"},
    "quant.medium": {"en": "Q5_K_M: a 1-4B model keeps most of its quality at 5 bits; 4-bit costs it more.",
                     "zh": "Q5_K_M：1-4B 的模型在 5 位下保留大部分质量；4 位损失更多。"},
    "quant.large": {"en": "Q4_K_M: the usual size/quality trade-off for models of 4B parameters and more.",
                    "zh": "Q4_K_M：4B 及以上参数模型常用的大小与质量折中。"},
    # The line under a chat answer (Chat).
    "chat.loaded": {"en": "model loaded in {seconds} s · ", "zh": "模型加载用时 {seconds} 秒 · "},
    "chat.stats": {"en": "first token {ttft} · {speed} tokens/s · {tokens} tokens",
                   "zh": "首个词元 {ttft} · {speed} 词元/秒 · {tokens} 个词元"},
    "chat.seconds": {"en": "{seconds} s", "zh": "{seconds} 秒"},
    "chat.seed": {"en": " · seed {seed}", "zh": " · 随机种子 {seed}"},
    "chat.stopped": {"en": " · ⏹ stopped", "zh": " · ⏹ 已停止"},
    "chat.dropped": {"en": " · ✂️ the {count} oldest messages no longer fit the context window and were left out",
                     "zh": " · ✂️ 最早的 {count} 条消息已超出上下文窗口，未计入"},
    "chat.sources": {"en": " · 📄 {count} sources", "zh": " · 📄 {count} 个来源"},
    "chat.busy": {"en": " · ℹ️ '{title}' is running on this machine too, so answers are slower",
                  "zh": " · ℹ️ 本机同时在运行“{title}”，所以回答会慢一些"},
    # The arena's reveal after a vote (Evaluate).
    "reveal.text": {"en": "**{outcome}.** A was **{a}**, B was **{b}**.", "zh": "**{outcome}。** A 是 **{a}**，B 是 **{b}**。"},
    "reveal.a": {"en": "A wins", "zh": "A 胜"},
    "reveal.b": {"en": "B wins", "zh": "B 胜"},
    "reveal.tie": {"en": "Tie", "zh": "平局"},
    "reveal.both_bad": {"en": "Both bad", "zh": "都差"},
    # The leaderboard (Evaluate).
    "board.model": {"en": "model", "zh": "模型"},
    "board.bt": {"en": "BT rating", "zh": "BT 评分"},
    "board.ci": {"en": "95 % CI", "zh": "95% 置信区间"},
    "board.elo": {"en": "Elo", "zh": "Elo 分"},
    "board.battles": {"en": "battles", "zh": "对战"},
    "board.wins": {"en": "wins", "zh": "胜"},
    "board.losses": {"en": "losses", "zh": "负"},
    "board.ties": {"en": "ties", "zh": "平"},
    "board.both_bad": {"en": "both bad", "zh": "都差"},
    "board.id": {"en": "id", "zh": "编号"},
    "board.vote": {"en": "{count} vote", "zh": "{count} 票"},
    "board.votes": {"en": "{count} votes", "zh": "{count} 票"},
    "board.not_enough": {"en": "not enough votes ({battles} of {needed} battles)",
                         "zh": "票数不足（{battles}/{needed} 场对战）"},
    "board.more_votes": {"en": "about {more} more votes needed to separate {better} and {worse}",
                         "zh": "还需约 {more} 票才能区分 {better} 和 {worse}"},
    "board.equal": {"en": "{better} and {worse} look equal so far", "zh": "目前看来 {better} 和 {worse} 不相上下"},
    "verdict.none": {"en": "{better} vs {worse}: no decisive vote yet ({votes} ties or both bad)",
                     "zh": "{better} 对 {worse}：还没有分出胜负的一票（{votes} 次平局或都差）"},
    "verdict.beats": {"en": "{better} beats {worse}: {figures}", "zh": "{better} 胜过 {worse}：{figures}"},
    "verdict.open": {"en": "{better} vs {worse} not yet separable: {advice} ({leader} {figures})",
                     "zh": "{better} 和 {worse} 尚未分出高下：{advice}（{leader} {figures}）"},
    "verdict.figures": {"en": "{rate} % win rate, 95 % CI {low}–{high} %, {decisive} votes{ties}",
                        "zh": "胜率 {rate}%，95% 置信区间 {low}–{high}%，{decisive} 票{ties}"},
    "verdict.ties": {"en": ", {neither} ties or both bad left out", "zh": "，不计 {neither} 次平局或都差"},
    "verdict.more": {"en": "about {more} more votes needed", "zh": "还需约 {more} 票"},
    "verdict.equal": {"en": "they may be equal: even {most} more votes would probably not separate them",
                      "zh": "两者可能相当：即使再投 {most} 票，大概也分不出高下"},
    # The lead sentence before an error's own text, by its class (core/errors.py).
    "error.BadInputError": {"en": "This input cannot be used as given.", "zh": "输入无法按原样使用。"},
    "error.CorruptFileError": {"en": "A file is damaged or not what its name says.", "zh": "文件已损坏或与其名称不符。"},
    "error.UnsafeModelError": {"en": "This model would run code when loaded.", "zh": "这个模型加载时会运行代码，已拒绝。"},
    "error.ModelNotFoundError": {"en": "The model was not found.", "zh": "找不到这个模型。"},
    "error.OfflineError": {"en": "This needs the network, which is off.", "zh": "这需要联网，但当前离线。"},
    "error.CapabilityError": {"en": "This machine cannot do that.", "zh": "本机无法执行此操作。"},
    "error.JobBusyError": {"en": "Another job is using the accelerator.", "zh": "另一个任务正在使用加速器。"},
    "error.DiskFullError": {"en": "The disk is full.", "zh": "磁盘空间不足。"},
    "error.OutputExistsError": {"en": "The output folder already exists.", "zh": "输出文件夹已存在。"},
    "error.LockedError": {"en": "This is turned off for a network without a password.",
                          "zh": "应用在无密码的网络上开放，此功能已关闭。"},
    "error.other": {"en": "Something went wrong.", "zh": "出错了。"},
    # The round-trip check and what it means for the recommendation (core/export/verdicts.py, choices.py).
    "rt.answers": {"en": "greedy answers vs the reference", "zh": "贪心回答与参照对比"},
    "rt.agreement": {"en": "token agreement", "zh": "词元一致率"},
    "rt.perplexity": {"en": "perplexity vs F16", "zh": "相对 F16 的困惑度"},
    "rt.agrees": {"en": "agrees on all prompts", "zh": "所有提示上都一致"},
    "rt.diverges": {"en": "diverges at {places}", "zh": "分叉于{places}"},
    "rt.place": {"en": "token {token} of prompt {prompt}", "zh": "提示 {prompt} 的第 {token} 个词元"},
    "rt.line_recommended": {"en": "{quant} (recommended): {verdict} with the merged model, greedy.",
                            "zh": "{quant}（推荐）：与合并模型相比（贪心）{verdict}。"},
    "rt.line": {"en": "{quant}: {verdict} with the merged model, greedy.", "zh": "{quant}：与合并模型相比（贪心）{verdict}。"},
    "rt.reference": {"en": "Reference: {reference}, greedy, {tokens} new tokens. Prompts: {prompts}",
                     "zh": "参照：{reference}，贪心解码，{tokens} 个新词元。提示：{prompts}"},
    "rt.early_quoted": {"en": "its greedy answer to prompt {prompt} (\"{text}\") leaves the merged model's at token {token}",
                        "zh": "它对提示 {prompt}（“{text}”）的贪心回答在第 {token} 个词元处偏离合并模型"},
    "rt.early": {"en": "its greedy answer to prompt {prompt} leaves the merged model's at token {token}",
                 "zh": "它对提示 {prompt} 的贪心回答在第 {token} 个词元处偏离合并模型"},
    "rt.use_safe": {"en": "{quant} is not recommended: {early}. {safe} agrees with the merged model early on every "
                          "check prompt; use it.",
                    "zh": "不推荐 {quant}：{early}。{safe} 在每个检查提示的开头都与合并模型一致；请用它。"},
    "rt.even_f16": {"en": "{quant} is not recommended: {early}. Even F16 diverges early ({f16}), so the GGUF "
                          "conversion itself changes answers; F16 is the closest file.",
                    "zh": "不推荐 {quant}：{early}。连 F16 也很早就分叉（{f16}），说明 GGUF 转换本身改变了回答；"
                          "F16 是最接近的文件。"},
    "rt.export_f16": {"en": "{quant} is not recommended: {early}. Export F16 and run the check again to compare.",
                      "zh": "不推荐 {quant}：{early}。请导出 F16 并再次运行检查来比较。"},
    "rt.before": {"en": "{gate} (Before the check: {size})", "zh": "{gate}（检查之前：{size}）"},
    "export.lmstudio": {"en": "LM Studio: `lms import {file}`, or put the file in a publisher/model folder under "
                              "LM Studio's models folder (My Models shows where). It reads the chat template from "
                              "the GGUF.",
                        "zh": "LM Studio：`lms import {file}`，或把文件放进 LM Studio 模型文件夹下的“发布者/模型”"
                              "文件夹（My Models 会显示位置）。它会从 GGUF 读取对话模板。"},
    # A training log line as people read it (core/train/logview.py): " · "-separated parts, each translated.
    "log.loss": {"en": "loss {value}", "zh": "损失 {value}"},
    "log.eval_loss": {"en": "validation loss {value}", "zh": "验证损失 {value}"},
    "log.lr": {"en": "lr {value}", "zh": "学习率 {value}"},
    "log.grad_norm": {"en": "grad norm {value}", "zh": "梯度范数 {value}"},
    "log.reward_margin": {"en": "reward margin {value}", "zh": "奖励差 {value}"},
    "log.preference_accuracy": {"en": "preference accuracy {value}", "zh": "偏好准确率 {value}"},
    "log.eval_reward_margin": {"en": "validation reward margin {value}", "zh": "验证奖励差 {value}"},
    "log.eval_preference_accuracy": {"en": "validation preference accuracy {value}", "zh": "验证偏好准确率 {value}"},
    "log.step_s": {"en": "{value} s/step", "zh": "{value} 秒/步"},
    "log.took": {"en": "training took {seconds} s", "zh": "训练用时 {seconds} 秒"},
    "log.mean_loss": {"en": "mean training loss {value}", "zh": "平均训练损失 {value}"},
    **ERRORS,  # what core's errors say (tabs/messages_errors.py): before the names below, like every sentence
    # Model names (core/evaluate/names.py for the arena and metrics; core/inference/choices.py for Chat's
    # picker): the kinds of model are words to translate, the names people gave stay. Last in the table, so
    # a sentence that holds a name is matched as the sentence first.
    "choice.default_gguf": {"en": "Default model · {model} (GGUF, llama.cpp)", "zh": "默认模型 · {model}（GGUF，llama.cpp）"},
    "choice.default_tf": {"en": "Default model · {model} (transformers)", "zh": "默认模型 · {model}（transformers）"},
    "choice.base": {"en": "Base · {name} (transformers)", "zh": "基础模型 · {name}（transformers）"},
    "choice.hub": {"en": "Hub · {repo} (transformers)", "zh": "Hub · {repo}（transformers）"},
    "choice.run": {"en": "Run {run} · adapter", "zh": "运行 {run} · 适配器"},
    "choice.export": {"en": "Export · {path} (GGUF, llama.cpp)", "zh": "导出 · {path}（GGUF，llama.cpp）"},
    "name.default": {"en": "Default model ({model})", "zh": "默认模型（{model}）"},
    "name.default_tf": {"en": "Default model ({model}) · transformers", "zh": "默认模型（{model}）· transformers"},
    "name.method_adapter": {"en": "{subject} · {method} adapter ({when})", "zh": "{subject} · {method} 适配器（{when}）"},
    "name.adapter_when": {"en": "{subject} · adapter ({when})", "zh": "{subject} · 适配器（{when}）"},
    "name.adapter": {"en": "{subject} · adapter", "zh": "{subject} · 适配器"},
    "name.base": {"en": "{subject} · base model", "zh": "{subject} · 基础模型"},
    "name.hub": {"en": "{subject} · Hub model", "zh": "{subject} · Hub 模型"},
    "name.when": {"en": "run {date} {time}", "zh": "{date} {time} 的运行"},
    "name.documents": {"en": "{name} + documents “{collection}”", "zh": "{name} + 文档“{collection}”"},
}

_BY_ENGLISH = {entry["en"]: key for key, entry in MESSAGES.items() if "{" not in entry["en"]}
"""Fixed English sentences (a job runner's detail, a gate's reason) → their key, to translate text core wrote."""


NUMBERS = {"steps", "seconds", "step", "speed", "tokens", "seed", "kept", "rows", "train", "validation",
           "duplicates", "near", "hits", "total", "median", "max", "billions", "millions", "narrow", "matrices",
           "count", "battles", "needed", "more", "most", "votes", "rate", "low", "high", "decisive", "neither"}
"""Placeholders that hold a number: read back only as digits, so "{count} votes" cannot swallow a sentence
that merely ends in "30 votes"."""


SLOTS = {"gate": ("rt.use_safe", "rt.even_f16", "rt.export_f16"), "figures": ("verdict.figures",),
         "advice": ("verdict.more", "verdict.equal"), "when": ("name.when",), "places": ("rt.place",),
         "early": ("rt.early_quoted", "rt.early"), "f16": ("rt.early_quoted", "rt.early")}
"""Placeholders that hold a sentence of the table: matched as that sentence, so a name with spaces and
brackets before it ("kestrel · adapter (run …) 100 % win rate, …") splits where the sentence starts."""

LISTS = {"places": {"en": ", ", "zh": "，"}, "early": {"en": "; ", "zh": "；"}, "f16": {"en": "; ", "zh": "；"}}
"""Slots that hold a list of such sentences, and how each language joins one."""

PLAIN_NAMES = {"subject"}
"""Placeholders that hold a name without brackets, so a longer sentence cannot pass for "{subject} · adapter"."""


def _pattern(english: str, capture: bool = True) -> str:
    def group(name: str | None) -> str:
        if not name:
            return ""
        if name in SLOTS:
            inner = "|".join(_pattern(MESSAGES[key]["en"], capture=False) for key in SLOTS[name])
            if name in LISTS:
                inner = f"(?:{inner})(?:{re.escape(LISTS[name]['en'])}(?:{inner}))*"
        else:
            inner = r"[\d,.]+" if name in NUMBERS else r"[^()]*?" if name in PLAIN_NAMES else ".*?"
        return f"(?P<{name}>{inner})" if capture else f"(?:{inner})"

    return "".join(re.escape(text) + group(name) for text, name, _, _ in string.Formatter().parse(english))


@functools.cache
def _patterns() -> list[tuple[str, re.Pattern]]:
    """English sentences with parameters, as patterns: core formats them in English and a tab reads them back.
    Compiled at the first translation rather than at import (several hundred; the app starts without them)."""
    return [(key, re.compile(_pattern(entry["en"]), re.DOTALL)) for key, entry in MESSAGES.items()
            if "{" in entry["en"]]


def locale_of(request: Any) -> str:
    """"zh" when the browser's first preferred language is Chinese, else "en" (also for API calls, tests
    that call a handler directly, and requests without the header)."""
    headers = getattr(request, "headers", None) or {}
    first = (headers.get("accept-language") or "").split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"


def say(key: str, locale: str = "en", **values: Any) -> str:
    """The message `key` in `locale`, its `{placeholders}` filled from `values`."""
    entry = MESSAGES[key]
    return entry.get(locale, entry["en"]).format(**values)


def translated(text: str, locale: str) -> str:
    """A sentence core wrote in English, in `locale` when the table has it (its parameters, themselves
    translated where they are sentences of the table, put in their places); else as written."""
    if locale == "en" or not text:
        return text
    if text in _BY_ENGLISH:
        return say(_BY_ENGLISH[text], locale)
    for key, pattern in _patterns():
        match = pattern.fullmatch(text)
        if match:
            return say(key, locale, **{name: _translated_slot(name, value, locale)
                                       for name, value in match.groupdict().items()})
    return text


def _translated_slot(name: str, value: str, locale: str) -> str:
    if name not in LISTS:
        return translated(value, locale)
    separators = LISTS[name]
    return separators.get(locale, separators["en"]).join(translated(part, locale)
                                                          for part in value.split(separators["en"]))


def translated_parts(line: str, locale: str, separator: str = " · ") -> str:
    """A line of `separator`-joined parts (a training log line), each part `translated`."""
    if locale == "en":
        return line
    return separator.join(translated(part, locale) for part in line.split(separator))


def localised(choices: list[tuple[str, str]], locale: str) -> list[tuple[str, str]]:
    """(label, value) choices with each label `translated`; the values (ids) stay."""
    return [(translated(label, locale), value) for label, value in choices]


def job_line(job, locale: str, *middle: str) -> str:
    """"**state** · middle… · detail": the job's state word, `middle` as given, and its detail line (as core
    wrote it, or translated)."""
    return " · ".join([f"**{say(f'job.{job.state.value}', locale)}**", *middle, translated(job.message, locale)])


def error_line(error: BaseException, locale: str = "en") -> str:
    """The `❌` line for an error: in English the error's own text, as the app always showed it; in another
    language a lead sentence for its class, then the error's message and hint, or a library failure's
    explanation, each `translated` (English where the table has no entry); the library's own text stays."""
    if locale == "en":
        return f"❌ {describe(error)}"
    from core.explain import explain

    key = next((f"error.{cls.__name__}" for cls in type(error).__mro__ if f"error.{cls.__name__}" in MESSAGES),
               "error.other")
    text = describe(error)
    if isinstance(error, ChatsmithError):
        text = " ".join(translated(part, locale) for part in (error.message, error.hint) if part)
    elif explanation := explain(error):
        text = say("err.explained", locale, cause=translated(explanation.cause, locale),
                   fix=translated(explanation.fix, locale), details=details(error))
    return f"❌ {say(key, locale)} {text}"


def translated_markdown(text: str, locale: str) -> str:
    """A Markdown text core wrote in English (a report: sentences and tables), in `locale`: each line, and
    each table cell on its own, through `translated`; file names, counts and anything unknown stay."""
    if locale == "en" or not text:
        return text
    lines = []
    for line in text.split("\n"):
        if line.startswith("|") and line.endswith("|") and not set(line) <= set("|-: "):
            cells = re.split(r"(?<!\\)\|", line[1:-1])
            line = "|" + "|".join(f" {translated(cell.strip(), locale)} " for cell in cells) + "|"
        else:
            line = translated(line, locale)
        lines.append(line)
    return "\n".join(lines)
