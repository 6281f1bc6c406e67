"""Deployment of BPMN files and the per-worker cache of parsed definitions.

Definitions live in the backend (so every worker sees the same versions); each
worker keeps the parsed specs in memory and drops them when the backend's cache
generation moves (``refreshCache`` or ``classAction`` on any worker bumps it).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from backends.base import Backend
from bpm.checks import check_spec
from bpm.engine.evaluation import evaluation_context
from bpm.engine.scripts import is_runnable_language
from bpm.errors import InvalidDefinition, ProcessNotFound
from bpm.expressions.beans import BeanRegistry
from bpm.model.parser import DEFAULT_MAX_BYTES, ParsedFile, parse_bpmn
from bpm.model.spec import ProcessSpec, ScriptTask
from bpm.records import Definition

BPMN_SUFFIXES = (".bpmn", ".bpmn20.xml")


def is_bpmn_file(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(BPMN_SUFFIXES)


@dataclass(frozen=True, slots=True)
class DeployReport:
    """What one deployment run did: the definitions it touched and the files it refused."""

    deployed: tuple[Definition, ...]
    errors: tuple[dict[str, object], ...]
    skipped: tuple[dict[str, str], ...] = ()
    created: tuple[Definition, ...] = ()
    #: what the engine does not honour in the deployed files (DeployWarning.as_dict() entries)
    warnings: tuple[dict[str, object], ...] = ()

    def warnings_of(self, file: str) -> list[dict[str, object]]:
        return [w for w in self.warnings if w["file"] == file]


def parse_and_check(
    data: bytes, *, file: str, now_ms: int, max_bytes: int = DEFAULT_MAX_BYTES, reject_scripts: bool = False
) -> ParsedFile:
    """Parse a file and run the deploy-time checks; with ``reject_scripts``, refuse scripts the
    engine cannot run. Raises InvalidDefinition. The result's warnings list what the engine does
    not honour (parser and checks)."""
    parsed = parse_bpmn(data, file=file, max_bytes=max_bytes)
    warnings = list(parsed.warnings)
    for spec in parsed.processes:
        warnings.extend(check_spec(spec, file, now_ms, check_scripts=reject_scripts))
    if reject_scripts:
        for spec in parsed.processes:
            for element in spec.elements.values():
                if isinstance(element, ScriptTask) and not is_runnable_language(element.language):
                    raise InvalidDefinition(
                        f"script language '{element.language}' is not supported (scripts run on the safe evaluator)",
                        code="UNSUPPORTED_SCRIPT", file=file, element_id=element.id, tag=element.tag,
                        line=element.line,
                    )  # fmt: skip
    return replace(parsed, warnings=tuple(warnings))


def check_file(
    data: bytes, *, file: str, now_ms: int, max_bytes: int = DEFAULT_MAX_BYTES, reject_scripts: bool = False
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Everything a deployment checks, storing nothing (for ``bpm lint``).

    Returns (errors, warnings): at most one error, the first found (``file``, ``message``,
    ``code`` and, where known, ``line``, ``elementId``, ``attribute``, ``fix``), and the
    warnings (``file``, ``elementId``, ``line``, ``attribute``, ``message``, ``instead``, ``fix``)."""
    try:
        parsed = parse_and_check(data, file=file, now_ms=now_ms, max_bytes=max_bytes, reject_scripts=reject_scripts)
    except InvalidDefinition as exc:
        return [_error_entry(file, exc)], []
    return [], [w.as_dict() for w in parsed.warnings]


class Deployer:
    """Parses BPMN files and stores their processes as versioned definitions."""

    def __init__(
        self,
        backend: Backend,
        now_ms: Callable[[], int],
        max_bytes: int,
        *,
        reject_scripts: bool = False,
        beans: BeanRegistry | None = None,
    ) -> None:
        self.backend = backend
        self.now_ms = now_ms
        self.max_bytes = max_bytes
        self.reject_scripts = reject_scripts
        #: the beans expressions may call: a call to another is refused at deployment
        self.beans = beans

    def parse(self, data: bytes, *, file: str) -> ParsedFile:
        """Parse and check a file (see :func:`parse_and_check`) against the clock and the beans."""
        with evaluation_context(self.now_ms, self.beans):
            return parse_and_check(
                data, file=file, now_ms=self.now_ms(), max_bytes=self.max_bytes, reject_scripts=self.reject_scripts
            )

    def deploy_bytes(self, data: bytes, *, file: str, app_name: str = "") -> DeployReport:
        """Deploy every executable process of one file. Raises InvalidDefinition."""
        parsed = self.parse(data, file=file)
        pairs = self._store(parsed, data, file=file, app_name=app_name)
        warnings = tuple(w.as_dict() for w in parsed.warnings)
        return DeployReport(tuple(d for d, _ in pairs), (), (), tuple(d for d, new in pairs if new), warnings)

    def _store(
        self, parsed: ParsedFile, data: bytes, *, file: str, app_name: str, shared: frozenset[str] = frozenset()
    ) -> list[tuple[Definition, bool]]:
        """Store each process of a parsed file: a new version unless the latest has this content.

        For a key in ``shared`` (defined by several files of one folder), any stored version with
        this content is reused, so that a refresh does not make new versions each time.
        """
        digest = hashlib.sha256(data).hexdigest()
        xml = data.decode("utf-8", errors="replace")
        stored = []
        for spec in parsed.processes:
            if spec.key in shared:
                same = [d for d in self.backend.definitions() if d.key == spec.key and d.content_hash == digest]
                if same:
                    stored.append((max(same, key=lambda d: d.version), False))
                    continue
            definition = Definition(
                key=spec.key,
                version=0,
                name=spec.name,
                xml=xml,
                content_hash=digest,
                deploy_time=self.now_ms(),
                file=file,
                app_name=app_name,
                version_tag=spec.version_tag,
            )
            stored.append(self.backend.deploy(definition))
        return stored

    def deploy_files(self, paths: Iterable[Path]) -> DeployReport:
        """Deploy each file; a file that fails is reported and does not stop the others.

        Every file is parsed and checked first; then the good ones are stored. A process key
        defined by several of the files gets one version per distinct content.
        """
        errors: list[dict[str, object]] = []
        skipped: list[dict[str, str]] = []
        good: list[tuple[Path, bytes, ParsedFile]] = []
        for path in paths:
            try:
                data = path.read_bytes()
                parsed = self.parse(data, file=path.name)
            except InvalidDefinition as exc:
                errors.append(_error_entry(path.name, exc))
                continue
            except OSError as exc:
                errors.append({"file": path.name, "message": f"cannot read file: {exc.strerror}", "code": "IO_ERROR"})
                continue
            good.append((path, data, parsed))
            skipped.extend({"file": path.name, "key": k, "reason": r} for k, r in parsed.skipped)
        keys = Counter(spec.key for _, _, parsed in good for spec in parsed.processes)
        shared = frozenset(key for key, count in keys.items() if count > 1)
        deployed: list[tuple[Definition, bool]] = []
        for path, data, parsed in good:
            deployed.extend(self._store(parsed, data, file=path.name, app_name="", shared=shared))
        warnings = tuple(w.as_dict() for _, _, parsed in good for w in parsed.warnings)
        return DeployReport(
            tuple(d for d, _ in deployed),
            tuple(errors),
            tuple(skipped),
            tuple(d for d, new in deployed if new),
            warnings,
        )


def _error_entry(file: str, exc: InvalidDefinition) -> dict[str, object]:
    """A refused file in a deploy report: where and why (the fields ``bpm lint`` prints)."""
    entry: dict[str, object] = {"file": file, "message": exc.message, "code": exc.code}
    for name, value in (("line", exc.line), ("elementId", exc.element_id), ("attribute", exc.attribute),
                        ("fix", exc.fix)):  # fmt: skip
        if value:
            entry[name] = value
    return entry


class DefinitionCache:
    """This worker's parsed definitions, rebuilt when the backend's generation moves.

    The generation is read at most once per ``max_age`` seconds of ``clock`` (monotonic):
    a deployment, ``refreshCache`` or ``classAction`` on another worker reaches this one
    within ``max_age`` (1 s by default), without a backend read per use case. A change made
    through this worker's runtime reloads at once. ``max_age=0`` reads it on every use."""

    def __init__(
        self,
        backend: Backend,
        max_bytes: int,
        *,
        max_age: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._checked_at: float | None = None
        self._records: dict[str, list[Definition]] = {}
        #: process name -> the keys whose latest version has that name, sorted (made at each reload)
        self._by_name: dict[str, list[str]] = {}
        self._specs: dict[str, ProcessSpec] = {}

    @property
    def generation(self) -> int | None:
        """The backend's cache generation these definitions were loaded at (None before)."""
        return self._generation

    def refresh_if_stale(self) -> None:
        """At most one backend read per ``max_age``: reload when another worker changed the definitions."""
        now = self.clock()
        checked_at = self._checked_at
        if checked_at is not None and self._generation is not None and 0 <= now - checked_at < self.max_age:
            return
        generation = self.backend.cache_generation()
        self._checked_at = now
        if generation != self._generation:
            self.reload(generation)

    def reload(self, generation: int | None = None) -> None:
        if generation is None:
            self._checked_at = self.clock()
            generation = self.backend.cache_generation()
        records: dict[str, list[Definition]] = {}
        for definition in sorted(self.backend.definitions(), key=lambda d: (d.key, d.version)):
            records.setdefault(definition.key, []).append(definition)
        by_name: dict[str, list[str]] = {}
        for key in sorted(records):
            by_name.setdefault(records[key][-1].name, []).append(key)
        with self._lock:
            self._records = records
            self._by_name = by_name
            self._specs = {}
            self._generation = generation

    def latest(self) -> list[Definition]:
        return [versions[-1] for versions in self._records.values()]

    def versions(self, key: str) -> list[Definition]:
        return list(self._records.get(key, []))

    def find(
        self,
        *,
        name: str | None = None,
        key: str | None = None,
        app_name: str | None = None,
        version: str | None = None,
    ) -> Definition:
        """The definition a start request names: by key, or by name then key. Raises ProcessNotFound."""
        keys = self._keys_for(name=name, key=key)
        if app_name:
            in_app = [k for k in keys if any(d.app_name == app_name for d in self._records[k])]
            keys = in_app or keys
        wanted = key or name or ""
        if not keys:
            raise ProcessNotFound(f"no deployed process is named '{wanted}'")
        versions = self._records[keys[0]]
        if version in (None, ""):
            return versions[-1]
        for definition in reversed(versions):
            if str(definition.version) == str(version).strip() or definition.version_tag == version:
                return definition
        raise ProcessNotFound(f"process '{wanted}' has no version '{version}'")

    def _keys_for(self, *, name: str | None, key: str | None) -> list[str]:
        if key is not None:
            return [key] if key in self._records else []
        by_name = self._by_name.get(name) if name is not None else None  # (None: no name matches)
        if by_name:
            return list(by_name)
        return [name] if name in self._records else []

    def get(self, definition_id: str) -> Definition:
        key, _, version = definition_id.rpartition(":")
        for definition in self._records.get(key, []):
            if str(definition.version) == version:
                return definition
        stored = self.backend.definition(key, int(version)) if version.isdigit() else None
        if stored is None:
            raise ProcessNotFound(f"process definition '{definition_id}' does not exist")
        return stored

    def spec_of_id(self, definition_id: str) -> ProcessSpec:
        """:meth:`spec` of :meth:`get`, straight from the parsed specs when it is there."""
        spec = self._specs.get(definition_id)
        return spec if spec is not None else self.spec(self.get(definition_id))

    def spec(self, definition: Definition) -> ProcessSpec:
        """The parsed spec of one definition, parsed at most once per worker and generation."""
        cache_key = definition.definition_id
        spec = self._specs.get(cache_key)
        if spec is None:
            parsed = parse_bpmn(definition.xml.encode("utf-8"), file=definition.file, max_bytes=self.max_bytes)
            for candidate in parsed.processes:
                if candidate.key == definition.key:
                    spec = candidate
            if spec is None:
                raise ProcessNotFound(f"process '{definition.key}' is missing from its stored XML")
            with self._lock:
                self._specs[cache_key] = spec
        return spec
