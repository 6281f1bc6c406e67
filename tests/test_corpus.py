"""Every public model under ../shared/bpmn/ deploys or is rejected with a precise error.

Prints the tally (run with ``-s`` to see it): deployed, skipped as not
executable, rejected by error code and reason.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from backends.memory import MemoryBackend
from bpm.errors import InvalidDefinition
from bpm.runtime import Runtime
from tests.conftest import SHARED_BPMN

FILES = (
    sorted(p for p in SHARED_BPMN.rglob("*") if p.is_file() and p.suffix in (".bpmn", ".xml"))
    if SHARED_BPMN.is_dir()
    else []
)


def deploy_one(runtime: Runtime, path: Path, warnings: Counter[str] | None = None) -> tuple[str, str]:
    try:
        report = runtime.deploy_file(path.read_bytes(), file=path.name)
        deployed = list(report.deployed)
        if warnings is not None:
            warnings.update(str(w["attribute"]) for w in report.warnings)
    except InvalidDefinition as exc:
        assert exc.file == path.name, exc.message
        if exc.code == "UNSUPPORTED_ELEMENT":
            assert exc.element_id and exc.tag and exc.line, exc.message
        return exc.code, exc.detail
    if deployed:
        return "deployed", ", ".join(f"{d.key}:{d.version}" for d in deployed)
    return "not executable", "no executable process"


@pytest.mark.skipif(not FILES, reason="../shared/bpmn is not present")
def test_every_shared_model_deploys_or_is_rejected_precisely() -> None:
    runtime = Runtime(MemoryBackend())
    warnings: Counter[str] = Counter()
    outcomes = {path.relative_to(SHARED_BPMN).as_posix(): deploy_one(runtime, path, warnings) for path in FILES}
    tally = Counter(kind for kind, _ in outcomes.values())
    reasons = Counter(f"{kind}: {detail.split(' (')[0]}" for kind, detail in outcomes.values() if kind != "deployed")
    print(f"\ncorpus: {len(FILES)} files: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))
    for reason, count in reasons.most_common():
        print(f"  {count:3d}  {reason}")
    for name, (kind, detail) in sorted(outcomes.items()):
        print(f"  {kind:20s} {name}: {detail}")
    print(f"warnings (not honoured, the models still deploy): {sum(warnings.values())}")
    for attribute, count in warnings.most_common():
        print(f"  {count:3d}  {attribute}")
    assert set(tally) <= {"deployed", "not executable", "INVALID_BPMN", "UNSUPPORTED_ELEMENT"}
    assert tally["deployed"] > 0


@pytest.mark.skipif(not FILES, reason="../shared/bpmn is not present")
def test_deployed_corpus_models_are_cached_and_startable_or_fail_cleanly() -> None:
    """Each deployed executable model starts, or fails with a domain error, never a crash."""
    from bpm.errors import BpmError

    runtime = Runtime(MemoryBackend())
    started = failed = 0
    for path in FILES:
        try:
            deployed = runtime.deploy(path.read_bytes(), file=path.name)
        except InvalidDefinition:
            continue
        for definition in deployed:
            try:
                runtime.start(unique_id=definition.key, variables={}, user="corpus")
                started += 1
            except BpmError:
                failed += 1
    print(f"\ncorpus start: {started} started, {failed} stopped with a domain error")
    assert started > 0
