"""Model cards rendered from the templates in `hub_cards/`, with `model-index` metrics the Hub can read."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

TEMPLATES = Path(__file__).resolve().parent.parent / "hub_cards"
# Measurements made after training by these scripts: each fills its own block of the card (see fill_card_block)
BENCHMARKS = {"regression": ["benchmarks/regression.py"], "denoiser": ["benchmarks/denoiser.py"],
              "signs": ["benchmarks/gtsrb.py"], "landmarks": ["benchmarks/landmarks.py"],
              "commands": ["benchmarks/commands.py", "benchmarks/commands_design.py"]}
BLOCK = re.compile(r"(<!-- BEGIN (?P<name>\S+) -->\n)(?P<body>.*?)(<!-- END (?P=name) -->)", re.S)


@dataclass
class Metric:
    name: str  # shown in the card's table, e.g. "validation MSE"
    metric_type: str  # model-index type, e.g. "mse", "accuracy"
    value: float
    split: str
    dataset_name: str
    dataset_type: str
    task_type: str


def format_value(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def render_model_card(
    *,
    task: str,
    repo_id: str,
    title: str,
    summary: str,
    usage: str,
    metrics: list[Metric],
    data_description: str,
    data_licence: str,
    training_command: str,
    training_details: str,
    limitations: str,
    images: list[tuple[str, str]] = (),
    tags: list[str] = (),
    datasets: list[str] | None = None,
    license: str = "mit",
) -> ModelCard:
    """`images` are (file name inside the repo, caption) pairs."""
    card_data = ModelCardData(
        license=license,
        library_name="pytorch",
        tags=["dlhub", "pytorch_model_hub_mixin", task, *tags],
        datasets=datasets,
        model_name=repo_id,
        eval_results=[
            EvalResult(
                task_type=m.task_type,
                dataset_type=m.dataset_type,
                dataset_name=m.dataset_name,
                dataset_split=m.split,
                metric_type=m.metric_type,
                metric_name=m.name,
                metric_value=round(float(m.value), 6),
            )
            for m in metrics
        ],
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATES / "model_card.md"),
        task=task,
        repo_id=repo_id,
        title=title,
        summary=summary,
        usage=usage,
        data_description=data_description,
        data_licence=data_licence,
        training_command=training_command,
        training_details=training_details,
        limitations=limitations,
        metrics_table=[{"name": m.name, "split": m.split, "value": format_value(m.value)} for m in metrics],
        images=[{"file": f, "caption": c} for f, c in images],
        benchmarks=BENCHMARKS.get(task, []),
    )


def fill_blocks(text: str, blocks: dict[str, str]) -> str:
    """Replace the body of each `<!-- BEGIN name -->…<!-- END name -->` block whose name is in `blocks`."""
    def replace(match: re.Match) -> str:
        if match["name"] not in blocks:
            return match.group(0)
        return match.group(1) + blocks[match["name"]].rstrip("\n") + "\n" + match.group(4)

    return BLOCK.sub(replace, text)


def fill_card_block(folder, name: str, markdown: str) -> Path:
    """Write `markdown` into block `name` of the model card in `folder` (README.md), atomically: how a benchmark
    script records what it measured on a trained model, so that no number is copied into a card by hand. A card
    without that block gets it appended as a section of its own."""
    card = Path(folder) / "README.md"
    text = card.read_text()
    if f"<!-- BEGIN {name} -->" not in text:
        text = text.rstrip("\n") + f"\n\n## Measured by `python {name}`\n\n<!-- BEGIN {name} -->\n<!-- END {name} -->\n"
    fd, tmp = tempfile.mkstemp(prefix=".README.", dir=card.parent)
    with os.fdopen(fd, "w") as f:
        f.write(fill_blocks(text, {name: markdown}))
    os.chmod(tmp, 0o644)
    os.replace(tmp, card)
    return card
