"""Automatic metrics on cases computed by hand, the prompt-set readers, and a metrics job end to end."""

import json
import math

import pytest

from core.errors import BadInputError
from core.evaluate import metrics, prompts
from core.evaluate.prompts import PromptItem
from core.inference import ModelChoice


class FakeBackend:
    """Answers from a table keyed by the last user message, in two pieces; records what it was asked."""

    def __init__(self, answers: dict[str, str]):
        self.answers, self.asked = answers, []

    def stream(self, messages, settings):
        self.asked.append(messages)
        answer = self.answers.get(messages[-1]["content"], "")
        yield from (answer[: len(answer) // 2], answer[len(answer) // 2:])


def fake_backend(monkeypatch, answers):
    backend = FakeBackend(answers)
    monkeypatch.setattr("core.inference.open_backend", lambda choice, workspace, **kw: backend)
    return backend


def test_rouge_l_and_bleu_match_the_hand_computed_values():
    row = metrics.score_sample("the cat sat on a mat", "the cat sat on the mat")
    assert row["rouge_l"] == pytest.approx(5 / 6)  # LCS "the cat sat on mat" = 5 of 6 tokens each way
    # precisions 5/6, 3/5, 2/4, 1/3 and no brevity penalty (same length)
    assert row["bleu"] == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, abs=1e-6)
    assert (row["length"], row["empty"], row["looping"]) == (6, False, False)


def test_chinese_answers_are_scored_per_character():
    row = metrics.score_sample("中国的首都是北京。", "中国的首都是北京。")
    assert row["rouge_l"] == pytest.approx(1.0) and row["bleu"] == pytest.approx(100.0)
    assert row["length"] == 8  # eight characters; the full stop is not a token
    half = metrics.score_sample("首都北京", "中国的首都是北京")  # LCS 4 of 4 and of 8: F1 = 2*1*0.5/1.5
    assert half["rouge_l"] == pytest.approx(2 / 3)


def test_empty_and_looping_answers_are_detected():
    assert metrics.score_sample("  ", "ref")["empty"] is True
    assert metrics.is_looping("ha ha " * 10)
    assert metrics.is_looping("I am sorry. " * 6)
    assert not metrics.is_looping("one two three four five six seven eight nine ten eleven twelve "
                                  "thirteen fourteen fifteen sixteen seventeen")
    assert not metrics.is_looping("yes yes yes")  # too short to call it a loop


def test_summary_rates_means_and_corpus_bleu():
    samples = [{"answer": "the cat sat on the mat", "reference": "the cat sat on the mat",
                **metrics.score_sample("the cat sat on the mat", "the cat sat on the mat")},
               {"answer": "", "reference": None, **metrics.score_sample("", None)}]
    summary = metrics.summarise(samples)
    assert summary["samples"] == 2 and summary["with_reference"] == 1
    assert summary["empty_rate"] == 0.5 and summary["mean_length"] == 3.0
    assert summary["rouge_l"] == pytest.approx(1.0) and summary["bleu"] == pytest.approx(100.0)


def write_dataset(workspace, rows):
    folder = workspace.datasets / "demo-abc123"
    folder.mkdir(parents=True)
    (folder / "validation.jsonl").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return folder


def test_validation_split_gives_prompt_history_and_reference(workspace):
    folder = write_dataset(workspace, [{"id": "1", "source": "x", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."}]}])
    [item] = prompts.load_prompt_set(folder)
    assert item.turns == ("Capital of France?",) and item.reference == "Paris."
    assert [m["content"] for m in item.history] == ["Be brief.", "Hi", "Hello."]
    with pytest.raises(BadInputError, match="no validation split"):
        prompts.dataset_prompts(workspace.datasets)


def test_questions_jsonl_with_mt_bench_two_turn_and_bad_lines(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question_id": 81, "category": "writing", "turns": ["Write a poem.", "Shorter."],
                                "reference": ["a poem", "short"]}) + "\n" + json.dumps({"prompt": "Hi"}) + "\n")
    two_turn, single = prompts.read_jsonl(path)
    assert two_turn.id == "81" and two_turn.turns == ("Write a poem.", "Shorter.") and two_turn.reference == "short"
    assert single.turns == ("Hi",) and single.reference is None
    path.write_text(json.dumps({"prompt": "ok"}) + "\n{not json\n")
    with pytest.raises(BadInputError, match="line 2"):
        prompts.read_jsonl(path)


def test_shipped_set_is_bilingual_with_two_turn_questions():
    english, chinese = prompts.shipped_prompts("en"), prompts.shipped_prompts("zh")
    assert len(english) == len(chinese) >= 5
    assert any(len(item.turns) == 2 for item in english) and any(len(item.turns) == 2 for item in chinese)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in item.turns[0]) for item in chinese)


def test_evaluate_answers_each_prompt_and_scores_it(workspace, monkeypatch):
    backend = fake_backend(monkeypatch, {"Capital of France?": "Paris.", "Say nothing": "",
                                         "Write a poem.": "Roses.", "Shorter.": "Rose."})
    items = [PromptItem("1", ("Capital of France?",), "Paris."), PromptItem("2", ("Say nothing",), "Silence."),
             PromptItem("3", ("Write a poem.", "Shorter."), "Rose.")]
    steps = []
    result = metrics.evaluate(ModelChoice(kind="gguf", label="fake"), items, workspace,
                              metrics.MetricsSettings(held_out_loss=False), progress=lambda *a: steps.append(a[0]))
    by_id = {s["id"]: s for s in result["samples"]}
    assert by_id["1"]["rouge_l"] == pytest.approx(1.0) and by_id["2"]["empty"]
    assert by_id["3"]["answer"] == "Rose." and by_id["3"]["rouge_l"] == pytest.approx(1.0)
    # the second turn saw the model's own first answer
    assert backend.asked[-1][-2:] == [{"role": "assistant", "content": "Roses."}, {"role": "user", "content": "Shorter."}]
    assert result["summary"]["empty_rate"] == pytest.approx(1 / 3) and steps == [1, 2, 3]


def test_held_out_loss_counts_only_the_reference_tokens(workspace, tiny_model_dir):
    from core.evaluate import heldout

    choice = ModelChoice(kind="base", model=str(tiny_model_dir), label="tiny")
    model, tokenizer = heldout.load(choice, workspace)
    loss, counted = heldout.sample_loss(model, tokenizer, PromptItem("1", ("Capital of France?",), "Paris."))
    assert counted == len(tokenizer("Paris.<|im_end|>\n", add_special_tokens=False)["input_ids"])
    assert abs(loss - math.log(len(tokenizer))) < 1.0  # an untrained model is close to uniform
    summary = metrics.summarise([{"answer": "x", "reference": None, "length": 1, "empty": False,
                                  "looping": False, "loss": loss, "loss_tokens": counted}])
    assert summary["perplexity"] == pytest.approx(math.exp(loss))


def test_metrics_job_writes_results_and_progress(workspace, monkeypatch, tmp_path):
    from core.evaluate.contenders import describe_choice
    from core.jobs import JobContext

    fake_backend(monkeypatch, {"Capital of France?": "Paris."})
    folder = write_dataset(workspace, [{"id": "1", "messages": [{"role": "user", "content": "Capital of France?"},
                                                                {"role": "assistant", "content": "Paris."}]}])
    job = workspace.jobs / "metrics-1"
    job.mkdir()
    params = {"workspace": str(workspace.root), "choice": describe_choice(ModelChoice(kind="gguf", label="fake")),
              "data": str(folder), "settings": {"held_out_loss": False}}
    result = metrics.run_job(JobContext(job, params))
    saved = json.loads((job / "metrics.json").read_text())
    assert saved["summary"]["rouge_l"] == pytest.approx(1.0) and saved["data"] == str(folder)
    assert "1 samples" in result["message"] and "ROUGE-L 1.000" in result["message"]
    assert json.loads((job / "events.jsonl").read_text().splitlines()[-1])["samples"] == 1


def test_settings_refuse_nonsense():
    with pytest.raises(BadInputError, match="limit"):
        metrics.MetricsSettings(limit=0)


@pytest.mark.slow
def test_metrics_command_on_the_packaged_default_model(workspace):
    import subprocess
    import sys

    output = subprocess.run([sys.executable, "-m", "core.evaluate", "--workspace", str(workspace.root), "metrics",
                             "default", "--data", "shipped", "--limit", "2", "--max-new-tokens", "12", "--no-loss"],
                            capture_output=True, text=True, timeout=300)
    assert output.returncode == 0, output.stderr
    result = json.loads(output.stdout)
    assert result["summary"]["samples"] == 2 and result["summary"]["mean_length"] > 0


@pytest.mark.slow
def test_gguf_held_out_loss_prefers_the_right_answer():
    from core.evaluate import heldout
    from core.models import packaged_gguf

    right, wrong = heldout.gguf_losses(packaged_gguf(), [
        PromptItem("1", ("What is the capital of France?",), "The capital of France is Paris."),
        PromptItem("2", ("What is the capital of France?",), "Purple bananas sing on Tuesdays.")])
    # only the reference and its end-of-turn count: "The capital of France is Paris.<|im_end|>\n" is 9 tokens
    assert (right[1], wrong[1]) == (9, 11)
    assert 0 < right[0] < 1.0 < 4.0 < wrong[0]  # measured: 0.34 vs 6.27


@pytest.mark.slow
def test_metrics_command_scores_a_run_adapter_with_held_out_loss(workspace, tiny_model_dir):
    import subprocess
    import sys

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    model.save_pretrained(workspace.runs / "tiny" / "adapter")
    folder = write_dataset(workspace, [{"id": str(i), "messages": [{"role": "user", "content": f"Count to {i}"},
                                                                   {"role": "assistant", "content": "1 2 3"}]}
                                       for i in range(3)])
    output = subprocess.run([sys.executable, "-m", "core.evaluate", "--workspace", str(workspace.root), "metrics",
                             "tiny", "--data", str(folder), "--limit", "2", "--max-new-tokens", "4"],
                            capture_output=True, text=True, timeout=300)
    assert output.returncode == 0, output.stderr[-2000:]
    result = json.loads(output.stdout)
    assert result["model"]["kind"] == "adapter" and result["model"]["adapter"].endswith("runs/tiny/adapter")
    summary = result["summary"]
    assert summary["samples"] == 2 and summary["perplexity"] == pytest.approx(math.exp(summary["loss"]))
    assert summary["loss"] > 5  # an untrained 2-layer model is far from the references
