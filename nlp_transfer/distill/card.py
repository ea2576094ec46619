"""The student's model card: it names the teacher and the method, and shows both side by side."""

from __future__ import annotations

import platform
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from nlp_transfer.distill.report import DistillReport, summary_table
from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.hub.card import REPO_PLACEHOLDER, template_path
from nlp_transfer.hub.public import public_text
from nlp_transfer.inference.predict import Classifier
from nlp_transfer.outputs import CARD_FILE, METRICS_FILE, POOLED_HEADS_FILE, STATIC_CLASSIFIER_FILE
from nlp_transfer.tasks import MULTI_LABEL, REGRESSION

TEMPLATE = "distilled.md"
CODE_FILES = {
    STATIC_CLASSIFIER_FILE: "the static student (numpy, torch and transformers only: the token table, the mean of a "
    "text's token vectors and the head)",
    POOLED_HEADS_FILE: "the pooled head (torch and transformers only: the pooling and the linear layer on "
    "transformers' own encoder class)",
}


def _method(report: DistillReport) -> str:
    method = report.method
    origin = "the teacher" if method.get("init") == "teacher" else "the teacher's pretrained checkpoint (no teacher)"
    if method["student"] == "static":
        return (
            f"static token vectors distilled from {origin}'s encoder by Model2Vec {method.get('model2vec') or ''} "
            f"({method['vocabulary']:,} tokens x {method['pca_dims']} dimensions), averaged per text, then a "
            "small head; vectors and head trained together. No transformer runs at prediction time."
        )
    if isinstance(method["kept_layers"], str):
        return f"{origin}'s embeddings, {method['kept_layers']} (ALBERT shares one layer's weights), and its head."
    kept = ", ".join(str(i) for i in method["kept_layers"])
    return (
        f"{len(method['kept_layers'])} of {origin}'s {method['teacher_layers']} layers (indices {kept}: every "
        "other one, as DistilBERT), with its embeddings and head, then trained."
    )


def _loss(report: DistillReport, task: str) -> str:
    training = report.training
    soft = {
        REGRESSION: "squared error to the teacher's value",
        MULTI_LABEL: f"binary cross-entropy to the teacher's sigmoid at temperature {training['temperature']}",
    }.get(
        task, f"KL divergence to the teacher's softmax at temperature {training['temperature']} (Hinton et al., 2015)"
    )
    return f"{soft}; on labelled rows weighted {training['alpha']} against the true labels' loss"


def _remote_code(folder: Path) -> dict[str, str | None]:
    """The model code the student's folder carries for `trust_remote_code` (a pooled head's, a static student's)."""
    for name, description in CODE_FILES.items():
        if (folder / name).is_file():
            return {"code_file": name, "code_description": description}
    return {"code_file": None, "code_description": None}


def write_card(folder: Path, report: DistillReport, teacher: Classifier) -> Path:
    teacher_folder = Path(report.teacher)
    base_model = None
    if (teacher_folder / METRICS_FILE).is_file():
        base_model = RunRecord.load(teacher_folder).base_model
    static = report.method["student"] == "static"
    data = ModelCardData(
        library_name="nlp-transfer" if static else "transformers",
        pipeline_tag="text-classification",
        tags=[
            "text-classification",
            "nlp-transfer",
            "distillation",
            *(["model2vec", "static-embeddings"] if static else []),
        ],
        base_model=base_model if base_model and "/" in base_model and not Path(base_model).exists() else None,
    )
    card = ModelCard.from_template(
        data,
        template_path=str(template_path(TEMPLATE)),
        report=report.to_dict(),
        teacher_name=public_text(teacher_folder.resolve().name),
        teacher=public_text(report.teacher),  # a local folder's absolute path would go public with the card
        base_model=public_text(base_model) if base_model else None,
        task={"single_label": "single-label", "multi_label": "multi-label"}.get(teacher.task, teacher.task),
        method_description=_method(report),
        loss_description=_loss(report, teacher.task),
        labels=[] if teacher.task == REGRESSION else teacher.labels,
        table=summary_table(report),
        cpu=platform.processor() or platform.machine(),
        architecture=type(teacher.model).__name__,
        repo_id=REPO_PLACEHOLDER,
        **_remote_code(folder),
    )
    path = folder / CARD_FILE
    card.save(path)
    return path
