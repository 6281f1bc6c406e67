"""The ``bpm`` command: ``serve``, ``worker``, ``lint``, ``test`` and ``token``.

``serve`` runs gunicorn on the import string ``app:create_app()`` (so ``bpm`` never
imports ``app.py``); ``worker`` builds its runtime from the environment with
:mod:`bpm.settings`, without Flask.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

import click
from prometheus_client import start_http_server

from bpm import logs, metrics, settings, worker
from bpm.cli.token import token

log = logging.getLogger("bpm.worker")
#: gunicorn's config as a module of this package, so it works from an installed package too
GUNICORN_CONFIG = "python:bpm.gunicorn_conf"


@click.group(name="bpm", context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """BPM process runtime: run the service and its timer worker, check and test BPMN models."""


@cli.command()
@click.option("--host", default=lambda: os.environ.get("HOST", "127.0.0.1"), show_default="$HOST or 127.0.0.1")
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", "5000")), show_default="$PORT or 5000")
@click.option(
    "--workers",
    type=int,
    default=lambda: int(os.environ.get("WEB_CONCURRENCY", "1")),
    show_default="$WEB_CONCURRENCY or 1",
    help="gunicorn worker processes (keep 1 with the memory backend)",
)
@click.option(
    "--threads",
    type=int,
    default=lambda: int(os.environ.get("GUNICORN_THREADS", "4")),
    show_default="$GUNICORN_THREADS or 4",
)
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Run the web service under gunicorn (app:create_app(), bpm.gunicorn_conf for metrics)."""
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", str(workers)]
    argv += ["--threads", str(threads)]
    argv += ["--config", GUNICORN_CONFIG]
    if (settings.ROOT / "app.py").is_file():  # a checkout: app.py beside bpm/ (installed: on sys.path)
        argv += ["--chdir", str(settings.ROOT)]
    argv.append("app:create_app()")
    os.execv(sys.executable, argv)


@cli.command(name="worker")
@click.option("--interval", type=float, default=None, help="seconds between rounds [default: $BPM_TIMER_INTERVAL or 1]")
@click.option("--batch", type=click.IntRange(1, 10_000), default=100, show_default=True, help="timers per backend read")
@click.option("--once", is_flag=True, help="fire what is due now, then exit")
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="serve this worker's Prometheus metrics (timer lag, instances ...) on 127.0.0.1:PORT/metrics",
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="interface of --metrics-port")
def worker_command(interval: float | None, batch: int, once: bool, metrics_port: int | None, metrics_host: str) -> None:
    """Fire due BPMN timers against the configured backend (BPM_BACKEND ...), until SIGTERM."""
    config = settings.load()
    logs.configure(config["BPM_LOG_LEVEL"], config["BPM_LOG_FORMAT"])
    every = settings.timer_interval(config["BPM_TIMER_INTERVAL"] if interval is None else interval)
    backend = settings.build_backend(config)
    runtime = settings.build_runtime(config, backend)
    metrics.install(runtime)
    log.info("timer worker: backend %s", settings.backend_label(backend))
    if config["BPM_DEPLOY_ON_START"]:
        settings.deploy_process_folder(runtime, log)
    else:
        runtime.cache.reload()
    if once:
        click.echo(f"fired {worker.run_once(runtime, batch)} timers")
        return
    if metrics_port is not None:
        start_http_server(metrics_port, addr=metrics_host)
        log.info("worker metrics on http://%s:%d/metrics", metrics_host, metrics_port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("timer worker started (every %.1f s, batches of %d)", every, batch)
    worker.run_loop(runtime, stop, every, batch)
    log.info("timer worker stopped")
    backend.close()


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def lint(paths: tuple[Path, ...], fmt: str) -> None:
    """Check BPMN files (or folders of them) as deployment would; exit 1 when one does not deploy."""
    from bpm.lint import lint_paths, render

    results = lint_paths(paths)
    click.echo(render(results, fmt), nl=False)
    sys.exit(0 if all(r.ok for r in results) else 1)


@cli.command(name="test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="write JUnit XML here")
@click.option("-v", "--verbose", is_flag=True, help="name every scenario, not only the failing ones")
def test_command(paths: tuple[Path, ...], junit: Path | None, verbose: bool) -> None:
    """Run YAML scenario files (or folders of them) in-process on the memory backend; exit 1 on a failure."""
    from bpm.scenarios import run_paths, write_junit

    report = run_paths(paths)
    for result in report.results:
        if result.failure or verbose:
            click.echo(result.describe())
    click.echo(report.summary())
    if junit is not None:
        write_junit(report, junit)
    sys.exit(0 if report.passed else 1)


cli.add_command(token)


def main(argv: list[str] | None = None) -> None:
    """The console script ``bpm``."""
    cli.main(args=argv, prog_name="bpm")


__all__ = ["cli", "main"]
