"""The Space: one gr.Blocks with a tab per course task; each tab lives in spaces/<tab>.py.

    python app.py          # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT to change)
"""

from __future__ import annotations

import gradio as gr

from dlhub.cli import setup_logging
from spaces import commands, denoising, exercises, landmarks, models, regression, signs
from spaces.common import EXAMPLES_DIR

TABS = [regression, denoising, signs, landmarks, commands, exercises]
CSS = """
.gradio-container {max-width: 1280px !important}
#mlp-result table {font-size: 0.9em}
"""


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="Deep learning course: models and exercises") as demo:
        gr.Markdown(
            "# Deep learning course Space\n"
            "The course's tasks as working models: each tab loads its model with `dlhub.load(task)` (from the Hub, "
            "or the checkpoint bundled with this Space when the Hub cannot be reached); choose another in the tab, "
            "or in the *Models* tab.")
        choices = {}  # task → its tab's model choice (the Models tab opens a model there)
        with gr.Tabs() as tabs:
            for tab in TABS:
                with gr.Tab(tab.TITLE, id=tab.TITLE.lower()):
                    choice = tab.build(demo)
                if choice is not None:
                    choices[choice.task] = choice
            with gr.Tab(models.TITLE, id="models"):
                models.build(demo, choices, tabs, {task: c.title.lower() for task, c in choices.items()})
    demo.queue(default_concurrency_limit=2)
    return demo


setup_logging()
demo = build_demo()

if __name__ == "__main__":
    demo.launch(theme=gr.themes.Soft(), css=CSS, ssr_mode=False, max_file_size="20mb", show_error=False,
                allowed_paths=[str(EXAMPLES_DIR)])
