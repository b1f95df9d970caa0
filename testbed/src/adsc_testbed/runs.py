"""The experiment's results as records: which weights were evaluated, with which method, at which
budget. The experiment fills a ``Results``; the report asks it by field, so no key is a string
that two files must spell alike."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Weights an evaluation runs on: the committed model, or a fine-tune of it (experiment.finetune).
PRETRAINED = "pretrained"
TWIN = "twin"  # fine-tuned for the same steps on the same data with nothing dropped (the control)
# ADSC fine-tunes: (training mode, curriculum). LoRA with the reverse curriculum is the paper's recipe.
TRAINED = {"lora-reverse": ("lora", "reverse"), "lora-direct": ("lora", "direct"),
           "lora-standard": ("lora", "standard"), "full-reverse": ("full", "reverse")}
# Question sets an evaluation runs on: the test split the tables report, or the validation split
# (another generation seed, other ids) that settings are chosen on.
TEST, VALIDATION = "test", "val"


@dataclass
class Tuning:
    """One method's choice at one budget: every reachable setting's Avg. rel. % on the validation
    split (grid order), and the chosen one (the best; a tie goes to the earlier in the grid)."""

    method: str
    budget: float
    validation: dict[str, float]  # setting name -> validation Avg. rel. %

    @property
    def chosen(self) -> str:
        return max(self.validation, key=self.validation.get)  # max keeps the first of equals


@dataclass(frozen=True)
class Run:
    """One evaluation: ``method`` "full" (nothing compressed) or a registered method at ``budget``
    average vision tokens; ``phase`` is untrained uniform dropping's spatial phase; ``setting``
    the name of a tuned Setting (empty: the method's untuned default, or ADSC's layers);
    ``seed`` the fine-tuning seed of trained weights (0: the first); ``split`` test or val."""

    method: str
    weights: str = PRETRAINED
    budget: float | None = None
    phase: float | None = None
    setting: str = ""
    seed: int = 0
    split: str = TEST

    @property
    def tag(self) -> str:
        """The budget as the report's tables and recovery keys write it ("16")."""
        return f"{int(self.budget)}" if self.budget is not None else "full"

    @property
    def label(self) -> str:
        """Its folder under runs/: the names earlier versions wrote, so their finished steps are reused
        (a setting, a later seed and the validation split add to the name; the default adds nothing)."""
        stem = self.stem + (f"[{self.setting}]" if self.setting else "") + (f"-seed{self.seed}" if self.seed else "")
        where = "" if self.budget is None else f"@{self.tag}"
        return ("val-" if self.split == VALIDATION else "") + stem + where

    @property
    def stem(self) -> str:
        if self.budget is None:
            return "full" if self.weights == PRETRAINED else f"{self.weights}-full"
        if self.weights == PRETRAINED:
            return self.method if self.phase is None else f"{self.method}-untrained-phase{self.phase}"
        if self.weights == TWIN:
            return f"twin-{self.method}"
        mode, curriculum = TRAINED[self.weights]
        name = "trained" if (mode, curriculum) == ("lora", "reverse") else "fullft" if mode == "full" else curriculum
        return f"{self.method}-{name}"


@dataclass
class Results:
    """Every evaluation's results.json by its Run, and the runs a method could not reach (with why)."""

    scored: dict[Run, dict] = field(default_factory=dict)
    skipped: dict[Run, str] = field(default_factory=dict)
    tuned: dict[tuple[str, float], Tuning] = field(default_factory=dict)  # (method, budget) -> its choice

    def __getitem__(self, run: Run) -> dict:
        return self.scored[run]

    def __contains__(self, run: Run) -> bool:
        return run in self.scored

    def records(self) -> list[dict]:
        """The runs as report.json lists them: the Run's fields, its folder, its headline scores."""
        return [{**asdict(run), "label": run.label,
                 "scores": {b: r["headline"] for b, r in result.get("benchmarks", {}).items()}}
                for run, result in self.scored.items()]
