"""The three task kinds and the model-config `problem_type` each maps to."""

SINGLE_LABEL = "single_label"
MULTI_LABEL = "multi_label"
REGRESSION = "regression"
TASKS = (SINGLE_LABEL, MULTI_LABEL, REGRESSION)

PROBLEM_TYPES = {
    SINGLE_LABEL: "single_label_classification",
    MULTI_LABEL: "multi_label_classification",
    REGRESSION: "regression",
}
TASK_OF_PROBLEM_TYPE = {problem_type: task for task, problem_type in PROBLEM_TYPES.items()}
