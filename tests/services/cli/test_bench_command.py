"""`omnisift bench` runs the benchmark scripts behind the README's figures, passing options through."""

from __future__ import annotations

from typer.testing import CliRunner

from services.cli.main import app


def test_bench_runs_a_benchmark_with_its_own_options():
    result = CliRunner().invoke(app, ["bench", "store", "--", "--clips", "2"])
    assert result.exit_code == 0, result.output
    assert "2 clips per column" in result.output  # the option reached the benchmark
    assert "stored payload per camera-hour (GB)" in result.output


def test_an_unknown_benchmark_is_named_with_the_choices():
    result = CliRunner().invoke(app, ["bench", "speed"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "unknown benchmark 'speed'; choose one of compressor, prefill, ingest, store, service" in result.stderr
