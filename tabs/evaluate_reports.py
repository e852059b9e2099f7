"""The Evaluate tab's reports: one run's report (Markdown + HTML + loss curves) and a write-up comparing
several runs. Runs are listed newest first; the values are their folder names."""

from __future__ import annotations

import gradio as gr

from core.evaluate import report
from core.train.runs import run_folders
from tabs.common import AppContext, error_text, refreshed, t


def build(ctx: AppContext, refresh_button: gr.Button, tab: gr.Tab) -> None:
    """A run's report and a multi-run write-up, each a button under its picker."""
    with gr.Accordion(t("evaluate.report"), open=False):
        with gr.Row():
            report_run = gr.Dropdown(label=t("evaluate.report_run"), elem_id="report-run")
            report_button = gr.Button(t("evaluate.report_make"), elem_id="report-make")
            writeup_runs = gr.Dropdown(multiselect=True, label=t("evaluate.writeup_runs"), elem_id="writeup-runs")
            writeup_button = gr.Button(t("evaluate.writeup_make"), elem_id="writeup-make")
        report_files = gr.File(file_count="multiple", interactive=False, elem_id="report-files")
        report_preview = gr.Markdown(elem_id="report-preview")

    def lists(run, several):
        """The picks while they exist, else the newest run: page load, Refresh and opening the tab agree."""
        runs = [folder.name for folder in run_folders(ctx.workspace)]  # newest first
        return refreshed(runs, run, runs[0] if runs else None), refreshed(runs, list(several or []))

    def on_refresh_clicked(run, several):
        return lists(run, several)

    def on_tab_selected(run, several):
        return lists(run, several)

    def on_report_clicked(run):
        try:
            paths = report.write_run_report(ctx.workspace, run)
        except Exception as error:
            return None, error_text(error)
        return [str(path) for path in paths.values()], paths["markdown"].read_text(encoding="utf-8")

    def on_writeup_clicked(runs):
        try:
            path = report.write_writeup(ctx.workspace, list(runs or []))
        except Exception as error:
            return None, error_text(error)
        return [str(path), str(path.with_suffix(".html"))], path.read_text(encoding="utf-8")

    pickers = [report_run, writeup_runs]
    ctx.demo.load(on_refresh_clicked, pickers, pickers)
    refresh_button.click(on_refresh_clicked, pickers, pickers)
    tab.select(on_tab_selected, pickers, pickers)
    report_button.click(on_report_clicked, report_run, [report_files, report_preview])
    writeup_button.click(on_writeup_clicked, writeup_runs, [report_files, report_preview])
