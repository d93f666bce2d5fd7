"""The course Space's code: one module per tab (`regression`, `denoising`, `signs`, `landmarks`, `commands`,
`exercises`), the model menus and the Models tab (`models`), what they share (`common`).

`build_demo()` is the whole course Space; `build_demo(["signs"])` a Space of one task (its tab and the Models tab).
What deploys is in the repository's `spaces/` folder: one folder per Space, each an `app.py` of three lines and a
README whose front matter Hugging Face reads. (This package is not named `spaces`: Hugging Face Spaces pre-install a
package of that name, which Gradio imports.)
"""

from __future__ import annotations

import importlib

import gradio as gr

from dlhub.space.common import EXAMPLES_DIR, MAX_UPLOAD_MB

# task → the module of its tab; "exercises" has no model
TAB_MODULES = {"regression": "regression", "denoiser": "denoising", "signs": "signs", "landmarks": "landmarks",
               "commands": "commands", "exercises": "exercises"}
CSS = """
.gradio-container {max-width: 1280px !important}
#mlp-result table {font-size: 0.9em}
"""


class CourseSpace(gr.Blocks):
    """gr.Blocks whose launch() always caps uploads and serves the examples folder, however it is started:
    `python app.py`, `gradio app.py`, or `demo` imported and launched by other code."""

    def launch(self, *args, **kwargs):
        kwargs["max_file_size"] = f"{MAX_UPLOAD_MB}mb"  # a caller cannot lift the cap
        kwargs.setdefault("theme", gr.themes.Soft())
        kwargs.setdefault("css", CSS)
        kwargs.setdefault("ssr_mode", False)
        kwargs.setdefault("show_error", False)
        kwargs["allowed_paths"] = [*(kwargs.get("allowed_paths") or []), str(EXAMPLES_DIR)]
        return super().launch(*args, **kwargs)


def build_demo(tasks: list[str] | None = None) -> CourseSpace:
    """The Space: a tab per task in `tasks` (every tab when None), then the Models tab of those tasks."""
    from dlhub.cli import setup_logging
    from dlhub.space import models

    setup_logging()
    names = list(TAB_MODULES) if tasks is None else list(tasks)
    unknown = [t for t in names if t not in TAB_MODULES]
    if unknown:
        raise ValueError(f"no tab for {unknown}: choose from {', '.join(TAB_MODULES)}")
    whole = tasks is None
    title = "Deep learning course: models and exercises" if whole else \
        f"Deep learning course: {', '.join(models.TASK_LABELS.get(t, t) for t in names)}"
    # Gradio's own copies of uploads and outputs: removed after an hour, checked every hour
    with CourseSpace(title=title, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            ("# Deep learning course Space\n" if whole else f"# {title}\n") +
            "The course's tasks as working models: each tab loads its model with `dlhub.load(task)` (from the Hub, "
            "or the checkpoint bundled with this Space when the Hub cannot be reached); choose another in the tab, "
            "or in the *Models* tab.")
        choices = {}  # task → its tab's model choice (the Models tab opens a model there)
        with gr.Tabs() as tabs:
            for name in names:
                tab = importlib.import_module(f"dlhub.space.{TAB_MODULES[name]}")
                with gr.Tab(tab.TITLE, id=tab.TITLE.lower()):
                    choice = tab.build(demo)
                if choice is not None:
                    choices[choice.task] = choice
            if choices:
                with gr.Tab(models.TITLE, id="models"):
                    models.build(demo, choices, tabs, {task: c.title.lower() for task, c in choices.items()})
    demo.queue(default_concurrency_limit=2)
    return demo
