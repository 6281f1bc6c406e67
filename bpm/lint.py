"""``bpm lint``: the deploy-time checks of BPMN files, without a server.

Each file is parsed and checked exactly as deployment does (:class:`bpm.definitions.Deployer`);
a file that would be refused gives an *error* (``file:line: element-id: message``,
then the fix where one is known). Files that deploy may still get *warnings*: what
the parser reports as running differently than in Camunda or Flowable (its
structured warnings, where the parser gives them), processes skipped as not
executable, script languages that fail when reached, exclusive gateways whose
every outgoing flow has a condition and no default. Fixes come from the parser
(:attr:`InvalidDefinition.fix`, :attr:`DeployWarning.fix`), else from :data:`FIXES`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backends.memory import MemoryBackend
from bpm.definitions import BPMN_SUFFIXES, Deployer
from bpm.engine.scripts import is_runnable_language
from bpm.errors import InvalidDefinition
from bpm.expressions.beans import load_beans
from bpm.model.parser import ParsedFile
from bpm.model.spec import ExclusiveGateway, ProcessSpec, ScriptTask

MAX_BYTES = 5 * 1024 * 1024

#: (pattern on the parser's message, the fix to print)
FIXES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), fix)
    for pattern, fix in (
        (r"^a catching message event needs a messageRef", 'name the message: messageRef="<id of a <message>>"'),
        (r"^a catching signal event needs a signalRef", 'name the signal: signalRef="<id of a <signal>>"'),
        (r"^a catching \w+ event needs", "add the missing reference attribute to the event definition"),
        (r"does not name a <(\w+)> of this file", r"declare the <\1> at the top of the file, or fix the reference"),
        (r"^sequence flow has no (\w+)", r"give the flow a \1 (the id of a flow node)"),
        (r"is not a flow node of this process", "point the reference at an element of the same process"),
        (r"^process has no start event", "add a <startEvent> (none, timer, message or signal)"),
        (r"^subprocess has no start event", "add a none <startEvent> inside the subprocess"),
        (r"^end event .* cannot have outgoing flows", "remove the outgoing flow, or use an intermediate event"),
        (r"^start event .* cannot have incoming flows", "remove the incoming flow; loop back to a task instead"),
        (r"^boundary event has no attachedToRef", "attach the boundary event to an activity (attachedToRef)"),
        (r"^call activity has no calledElement", "set calledElement to the id of the process to call"),
        (r"^script task has no script", "add a <script> element with the script text"),
        (r"^standard loop needs", "add a loopCondition or a loopMaximum"),
        (r"is not a valid variable name", "use a name of letters, digits and _ that does not start with _"),
        (r"^timer event definition has both", "keep one of timeDate, timeDuration, timeCycle"),
        (r"^external script resources", "put the script text inline in <script>"),
        (r"^instantiating (event-based gateways|receive tasks)", "start with a message start event instead"),
        (r"^events with several event definitions", "split the event into one event per definition"),
        (r"^compensation handlers", "model the undo path with an error boundary event or event subprocess"),
        (
            r"^invalid (condition|expression)",
            "fix the expression's syntax (${...} JUEL, = FEEL, or a plain comparison)",
        ),
        (
            r"script language '.*' is not supported",
            "rewrite the script for the safe evaluator, or use an external task",
        ),
        (r"^not a BPMN 2.0 document", "export the model as BPMN 2.0 XML from the modeler"),
        (r"DTD|entity", "remove the DOCTYPE: BPMN files need none"),
        (r"<\w+> is not supported", "see README, BPMN support, for the supported elements and the alternatives"),
    )
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in one file: an ``error`` stops deployment, a ``warning`` does not."""

    severity: str
    file: str
    message: str
    line: int | None = None
    element_id: str | None = None
    code: str | None = None
    fix: str | None = None
    attribute: str | None = None

    def text(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        element = f" {self.element_id}:" if self.element_id else ""
        label = "" if self.severity == "error" else f" {self.severity}:"
        fix = f"\n    fix: {self.fix}" if self.fix else ""
        return f"{where}:{element}{label} {self.message}{fix}"


@dataclass(slots=True)
class FileResult:
    """The outcome for one file: the processes it deploys, and what was found."""

    file: str
    processes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)


def fix_for(message: str) -> str | None:
    for pattern, fix in FIXES:
        match = pattern.search(message)
        if match:
            return match.expand(fix) if "\\" in fix else fix
    return None


def bpmn_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The files named, and the BPMN files in the folders named (recursively, sorted)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(BPMN_SUFFIXES))
        else:
            yield path


def lint_file(path: Path, *, reject_scripts: bool = False) -> FileResult:
    """Check one file as deployment would (on a throw-away memory backend: nothing is stored)."""
    shown = str(path)
    result = FileResult(shown)
    beans = load_beans(os.environ.get("BPM_BEANS"))  # the beans the service would have
    deployer = Deployer(MemoryBackend(), lambda: 0, MAX_BYTES, reject_scripts=reject_scripts, beans=beans)
    try:
        parsed = deployer.parse(path.read_bytes(), file=shown)
    except InvalidDefinition as exc:
        result.findings.append(_error(shown, exc))
        return result
    except OSError as exc:
        result.findings.append(Finding("error", shown, f"cannot read file: {exc.strerror}", code="IO_ERROR"))
        return result
    result.processes = [spec.key for spec in parsed.processes]
    result.findings.extend(_warnings(shown, parsed))
    return result


def _error(file: str, exc: InvalidDefinition) -> Finding:
    message = exc.detail
    return Finding(
        "error", file, message, exc.line, exc.element_id, exc.code, exc.fix or fix_for(message), exc.attribute
    )


def _warnings(file: str, parsed: ParsedFile) -> Iterator[Finding]:
    for warning in parsed.warnings:  # what the parser knows runs differently than in the vendor's engine
        yield Finding(
            "warning", file, f"{warning.message}; {warning.instead}", warning.line, warning.element_id,
            "VENDOR_DIFFERENCE", warning.fix, warning.attribute,
        )  # fmt: skip
    for key, reason in parsed.skipped:
        yield Finding("warning", file, f"process '{key}' is not deployed: {reason}", element_id=key, code="SKIPPED")
    for spec in parsed.processes:
        yield from _spec_warnings(file, spec)


def _spec_warnings(file: str, spec: ProcessSpec) -> Iterator[Finding]:
    for element in spec.elements.values():
        if isinstance(element, ScriptTask) and not is_runnable_language(element.language):
            yield Finding(
                "warning", file,
                f"script language '{element.language}' does not run here: an instance that reaches it gets "
                "422 UNSUPPORTED_SCRIPT (Camunda and Flowable would run it)",
                element.line, element.id, "UNSUPPORTED_SCRIPT",
                "rewrite the script for the safe evaluator, or make it an external task",
            )  # fmt: skip
        if isinstance(element, ExclusiveGateway) and len(element.outgoing) > 1 and element.default is None:
            flows = [spec.flows[f] for f in element.outgoing if f in spec.flows]
            if flows and all(f.condition is not None for f in flows):
                yield Finding(
                    "warning", file,
                    "every outgoing flow has a condition and there is no default: when none holds, "
                    "the step fails with 422 NO_MATCHING_FLOW",
                    element.line, element.id, "NO_DEFAULT_FLOW", "add a default flow (default=\"<flow id>\")",
                )  # fmt: skip


def lint_paths(paths: Iterable[Path], *, reject_scripts: bool = False) -> list[FileResult]:
    """Every BPMN file under ``paths``; a path with no BPMN file in it is itself an error."""
    results = []
    for path in paths:
        files = list(bpmn_files([path]))
        if not files:
            results.append(FileResult(str(path), findings=[Finding("error", str(path), "no BPMN files here")]))
        results.extend(lint_file(f, reject_scripts=reject_scripts) for f in files)
    return results


def render(results: list[FileResult], fmt: str = "text") -> str:
    """``text``: one finding per line (fix indented below) and a summary; ``json``: one document."""
    errors = sum(1 for r in results for f in r.findings if f.severity == "error")
    warnings = sum(1 for r in results for f in r.findings if f.severity != "error")
    if fmt == "json":
        document = {
            "ok": errors == 0,
            "errors": errors,
            "warnings": warnings,
            "files": [
                {"file": r.file, "ok": r.ok, "processes": r.processes, "findings": [_json(f) for f in r.findings]}
                for r in results
            ],
        }
        return json.dumps(document, indent=2) + "\n"
    lines = [f.text() for r in results for f in r.findings]
    deployable = sum(1 for r in results if r.ok)
    lines.append(f"{len(results)} files: {deployable} deploy, {errors} errors, {warnings} warnings")
    return "\n".join(lines) + "\n"


def _json(finding: Finding) -> dict[str, Any]:
    data = asdict(finding)
    data["elementId"] = data.pop("element_id")
    return data
