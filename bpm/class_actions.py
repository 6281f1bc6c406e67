"""``classAction`` of the original API: refresh, first-deploy ('generate') or fetch ('file')
named processes, by ``<uniqueId>.<appName>.<processName>.<snapVersion>.jar`` or file name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpm.errors import ProcessNotFound, ValidationError
from bpm.records import Definition

if TYPE_CHECKING:
    from bpm.runtime import Runtime


@dataclass(frozen=True, slots=True)
class ClassActionTarget:
    """One entry of ``classAction``'s ``fileNames``, or its ``processName``."""

    raw: str
    key: str | None = None
    name: str | None = None
    app_name: str | None = None
    version: str | None = None
    file: str | None = None


def parse_class_action_name(raw: str) -> ClassActionTarget:
    """``<uniqueId>.<appName>.<processName>.<snapVersion>.jar`` or ``<file>.bpmn``."""
    text = raw.strip()
    lower = text.lower()
    if lower.endswith((".bpmn", ".bpmn20.xml", ".xml")):
        return ClassActionTarget(raw, file=Path(text).name)
    if lower.endswith(".jar"):
        parts = text[:-4].split(".")
        if len(parts) >= 4:
            return ClassActionTarget(
                raw, key=parts[0], app_name=parts[1] or None, name=".".join(parts[2:-1]), version=parts[-1] or None
            )
        return ClassActionTarget(raw, key=parts[0])
    return ClassActionTarget(raw, name=text)


def class_action(
    runtime: Runtime, file_names: Iterable[str], event: str = "refresh", process_name: str | None = None
) -> dict[str, Any]:
    """Refresh, first-deploy ('generate') or fetch ('file') specific processes."""
    runtime.cache.refresh_if_stale()
    targets = [parse_class_action_name(n) for n in file_names if n and n.strip()]
    if process_name:
        targets.append(ClassActionTarget(process_name, name=process_name))
    if not targets:
        raise ValidationError("classAction needs 'fileNames' or 'processName'")
    errors: list[str] = []
    if event in ("refresh", "generate"):
        _deploy_targets(runtime, targets, only_new=event == "generate", errors=errors)
    found = _resolve_targets(runtime, targets)
    if not found:
        names = ", ".join(t.raw for t in targets)
        raise ProcessNotFound(f"none of the named processes exists: {names}")
    files = [_file_entry(d) for d in found] if event == "file" else []
    return {
        "responseStatus": "FAILURE" if errors else "SUCCESS",
        "process": [runtime._summary(d) for d in found],
        "files": files,
        "exception": "; ".join(errors),
    }


def _deploy_targets(runtime: Runtime, targets: list[ClassActionTarget], *, only_new: bool, errors: list[str]) -> None:
    paths: list[Path] = []
    for target in targets:
        path = _source_file(runtime, target)
        if path is None or (only_new and _resolve_targets(runtime, [target])):
            continue
        paths.append(path)
    report = runtime.deployer.deploy_files(dict.fromkeys(paths))
    errors.extend(f"{e['file']}: {e['message']}" for e in report.errors)
    runtime._deployed(report)


def _source_file(runtime: Runtime, target: ClassActionTarget) -> Path | None:
    files = runtime.process_files()
    if target.file:
        return next((p for p in files if p.name == target.file), None)
    for definition in _resolve_targets(runtime, [target]):
        match = next((p for p in files if p.name == definition.file), None)
        if match:
            return match
    wanted = target.key or target.name
    return next((p for p in files if p.name.split(".")[0] == wanted), None)


def _resolve_targets(runtime: Runtime, targets: list[ClassActionTarget]) -> list[Definition]:
    found: dict[str, Definition] = {}
    for target in targets:
        if target.file:
            for definition in runtime.cache.latest():
                if definition.file == target.file:
                    found[definition.definition_id] = definition
            continue
        try:
            definition = runtime.cache.find(
                name=target.name if target.key is None else None,
                key=target.key,
                app_name=target.app_name,
                version=None,
            )
        except ProcessNotFound:
            continue
        found[definition.definition_id] = definition
    return list(found.values())


def _file_entry(definition: Definition) -> dict[str, Any]:
    return {
        "fileName": definition.file,
        "key": definition.key,
        "name": definition.name,
        "version": definition.version,
        "xml": definition.xml,
    }
