"""scripts/benchmark_distill.py: its variants reach the command line whole, each run has its own folder."""

from __future__ import annotations

from types import ModuleType

from conftest import load_script


def _script() -> ModuleType:
    return load_script("benchmark_distill")


def test_every_variant_survives_the_separator_of_the_variants_option_and_gets_its_own_folder() -> None:
    script = _script()
    assert ";".join(script.VARIANTS).split(";") == list(script.VARIANTS)  # a ';' in a name would split it
    names = {script.folder_name(kind, variant) for kind in script.STUDENTS for variant in script.VARIANTS}
    assert len(names) == len(script.STUDENTS) * len(script.VARIANTS)
    assert script.folder_name("layers:3", "teacher+unlabelled") == "layers3-teacher-unlabelled"


def test_the_train_recipe_is_for_layer_students_and_twenty_epochs_for_static_ones() -> None:
    script = _script()
    assert script.applies("layers:3", script.TRAIN_RECIPE) and not script.applies("static", script.TRAIN_RECIPE)
    assert script.applies("static", "no teacher, 20 epochs") and not script.applies("layers:3", "no teacher, 20 epochs")
    assert all(script.applies(kind, "teacher+unlabelled") for kind in script.STUDENTS)
