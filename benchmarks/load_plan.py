"""What benchmarks/load_submissions.py submits: users in two groups, model folders each submitted five times
in one of five patterns, and evaluator runs; and what the site must end up with (duplicates collapsed).

Patterns of a folder's five submissions (every post of one form carries that form's submission_token):
- same-user:      one user sends five separately loaded forms               -> 1 model, 1 run
- same-group:     the five users of one group, private to that group         -> 1 model, 1 run
- two-precisions: users of both groups, 3x float32 and 2x bfloat16, public   -> 2 models, 2 runs
- double-post:    forms T1, T2 each posted twice at once (a double click), T3 -> 1 model, 1 run
- forced:         the same, with "run again" ticked                          -> 1 model, 3 runs (one per form)

A spec (folder, precision) is either always forced or never: a forced run is a run of its spec too, so
an ordinary submission racing a forced one may get the forced run back (runs.services.run_existing_find)
and whether a deduplicated run then also appears would depend on who came first. Keeping them apart
makes the expected counts exact.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

GROUPS = ("team-a", "team-b")
USERS_PER_GROUP = 5
PATTERN_CYCLE = (
    "same-user",
    "same-group",
    "two-precisions",
    "double-post",
    "forced",
    "same-user",
    "same-group",
    "same-user",
    "same-group",
    "same-user",
)
EVALUATOR_METRICS = ["exact_match", "rouge_l", "bleu", "chrf"]


def user_names(group: str) -> list[str]:
    return [f"{group[-1]}{n}" for n in range(1, USERS_PER_GROUP + 1)]


@dataclass
class PostResult:
    status: int
    seconds: float
    run_id: int | None = None
    error: str = ""


@dataclass
class Form:
    """One form as a browser loads it (one submission_token) and posts it once or twice."""

    kind: str  # "submit" or "evaluate"
    user: str
    fields: dict
    posts: int = 1
    pattern: str = ""
    spec: tuple[str, str] | None = None  # (folder, precision) of a submission
    forced: bool = False
    token: str = ""
    csrf: str = ""
    results: list[PostResult] = field(default_factory=list)

    @property
    def path(self) -> str:
        return "/submit/" if self.kind == "submit" else "/evaluator/runs/new/"


def _submission(
    *,
    user: str,
    folder: str,
    suite: str,
    limit: int | None,
    precision: str = "float32",
    group_id: int | None = None,
    forced: bool = False,
    posts: int = 1,
    pattern: str,
) -> Form:
    fields = {
        "storage_path": folder,
        "display_name": "",
        "revision_note": "",
        "precision": precision,
        "weight_type": "original",
        "base_model_path": "",
        "model_type": "pretrained",
        "suite": suite,
        "limit": "" if limit is None else str(limit),
        "group": "" if group_id is None else str(group_id),
    }
    if group_id is not None:
        fields["private"] = "on"
    if forced:
        fields["force"] = "on"
    return Form(
        kind="submit", user=user, fields=fields, posts=posts, pattern=pattern, spec=(folder, precision), forced=forced
    )


def folder_forms(index: int, folder: str, *, suite: str, limit: int | None, group_ids: dict[str, int]) -> list[Form]:
    """The five submissions of one folder."""
    pattern = PATTERN_CYCLE[index % len(PATTERN_CYCLE)]
    group = GROUPS[index % 2]
    users = user_names(group)
    common = {"folder": folder, "suite": suite, "limit": limit, "pattern": pattern}
    if pattern == "same-user":
        return [_submission(user=users[index % USERS_PER_GROUP], **common) for _ in range(5)]
    if pattern == "same-group":
        return [_submission(user=user, group_id=group_ids[group], **common) for user in users]
    if pattern == "two-precisions":
        mixed = [user_names(GROUPS[0])[0], user_names(GROUPS[1])[0], user_names(GROUPS[0])[1]]
        return [_submission(user=user, **common) for user in mixed] + [
            _submission(user=user, precision="bfloat16", **common)
            for user in (user_names(GROUPS[1])[1], user_names(GROUPS[0])[2])
        ]
    forced = pattern == "forced"
    return [_submission(user=users[0], forced=forced, posts=posts, **common) for posts in (2, 2, 1)]


def evaluator_forms(count: int, *, version_ids: dict[str, int]) -> list[Form]:
    """Evaluator runs on each group's golden dataset (its own responses, text metrics only: no judge);
    every fourth form is posted twice at once."""
    forms = []
    for index in range(count):
        group = GROUPS[index % 2]
        fields = {
            "dataset_version": str(version_ids[group]),
            "target_kind": "precomputed",
            "preset": "custom",
            "metrics": list(EVALUATOR_METRICS),
            "prompt_template": "",
            "judge": "",
            "embedding": "",
            "target_model": "",
            "target_endpoint": "",
        }
        forms.append(
            Form(
                kind="evaluate",
                user=user_names(group)[index % USERS_PER_GROUP],
                fields=fields,
                posts=2 if index % 4 == 3 else 1,
                pattern="evaluator",
            )
        )
    return forms


def expected_counts(forms: list[Form]) -> dict[str, int]:
    """Model rows and runs the site must hold once every duplicate has collapsed."""
    specs: dict[tuple[str, str], dict[str, int]] = {}
    for form in forms:
        if form.kind == "submit":
            seen = specs.setdefault(form.spec, {"plain": 0, "forced": 0})
            seen["forced" if form.forced else "plain"] += 1
    mixed = [spec for spec, seen in specs.items() if seen["plain"] and seen["forced"]]
    assert not mixed, f"a spec is both forced and not: {mixed} (see the module docstring)"
    benchmark_runs = sum(seen["forced"] or 1 for seen in specs.values())
    evaluator_runs = sum(1 for form in forms if form.kind == "evaluate")
    return {
        "models": len(specs),
        "benchmark_runs": benchmark_runs,
        "evaluator_runs": evaluator_runs,
        "runs": benchmark_runs + evaluator_runs,
    }


def post_order(forms: list[Form], *, seed: int = 7) -> list[tuple[Form, int]]:
    """Every post, shuffled; the two posts of a double post next to each other, so that they go out together."""
    units = [[(form, n) for n in range(form.posts)] for form in forms]
    random.Random(seed).shuffle(units)
    return [post for unit in units for post in unit]


__all__ = [
    "EVALUATOR_METRICS",
    "GROUPS",
    "Form",
    "PostResult",
    "evaluator_forms",
    "expected_counts",
    "folder_forms",
    "post_order",
    "user_names",
]
