"""The top-level Python API: README's "From Python" block as it is, a light ``import vniahd``,
and user errors raised as :class:`VniahdError` before any model is loaded."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vniahd
from vniahd.errors import UnknownNameError, VniahdError

README = Path(__file__).resolve().parents[1] / "README.md"
HEAVY = ("torch", "transformers", "cv2", "matplotlib")


def readme_python_block() -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"^## From Python\n.*?^```python\n(.*?)^```", text, re.S | re.M)
    assert m, "README.md lost its '## From Python' section or its ```python block"
    return m.group(1)


def test_readme_snippet_runs(tmp_path, monkeypatch):
    # The real demo haystack takes ~30 s to build (tests/test_media_demo.py covers it); "demo"
    # here resolves to a small clip, everything else is what the README runs.
    import vniahd.media
    from vniahd.media import write_mp4

    rng = np.random.default_rng(0)
    clip = write_mp4(rng.integers(0, 256, (24, 56, 84, 3), dtype=np.uint8), tmp_path / "hay.mp4", fps=1)
    built: list[Path] = []
    fake = lambda *a, **k: built.append(clip) or clip  # noqa: E731
    monkeypatch.setattr(vniahd.media, "build_demo_haystack", fake)
    # generate binds the name at import: patch it there too, whichever test imported it first
    monkeypatch.setattr("vniahd.dataset.generate.build_demo_haystack", fake)
    monkeypatch.setenv("VNIAHD_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)

    scope: dict = {"__name__": "readme"}
    exec(compile(readme_python_block(), str(README), "exec"), scope)

    assert built, "the README's haystack='demo' no longer goes through vniahd.media.build_demo_haystack"
    assert isinstance(scope["ds"], vniahd.dataset.Dataset)
    summary = scope["summary"]
    assert list(summary) == ["vanilla", "mrope", "videorope"]
    assert all(s["total"] == len(scope["ds"].samples) == 36 for s in summary.values())
    assert Path(scope["paths"]["report.html"]).is_file()
    assert (tmp_path / "results" / "api-demo" / "run.json").is_file()

    backend = vniahd.load_model(scope["model"])  # a loaded model serves several evaluate calls
    again = vniahd.evaluate(scope["ds"], backend, "tad", out="results/again", limit=3, progress=False)
    assert again == {"tad": {**again["tad"], "total": 3}}
    with pytest.raises(VniahdError, match="only apply when model is a spec string"):
        vniahd.evaluate(scope["ds"], backend, "tad", out="results/again", device="cpu")


def test_import_vniahd_is_light():
    code = (
        "import json, sys, vniahd\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "missing = [n for n in vniahd.__all__ if not hasattr(vniahd, n)]\n"
        "import vniahd.reporting.stats, vniahd.evaluation\n"  # the nouns imported: verbs unchanged
        "verbs = [inspect.isfunction(getattr(vniahd, n)) for n in ('evaluate', 'report')]\n"
        "print(json.dumps({'heavy': heavy, 'missing': missing, 'verbs': verbs}))\n"
    ).replace("import json,", "import inspect, json,")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == {"heavy": [], "missing": [], "verbs": [True, True]}


def test_verbs_are_functions_and_subpackages_are_nouns():
    import types

    from vniahd import _api
    from vniahd.evaluation import Runner

    for verb, noun in (("evaluate", "evaluation"), ("report", "reporting")):
        assert inspect.isfunction(getattr(vniahd, verb)) and getattr(vniahd, verb) is getattr(_api, verb)
        assert isinstance(importlib.import_module(f"vniahd.{noun}"), types.ModuleType)
    assert vniahd.evaluation.Runner is Runner
    assert "variants" in inspect.signature(vniahd.evaluate).parameters


def test_generate_is_the_cli_library_call():
    from vniahd.dataset.generate import generate

    assert vniahd.generate is generate


def test_unknown_variant_is_a_clear_error(tmp_path):
    with pytest.raises(UnknownNameError, match=r"unknown variant 'nope'; valid variants: .*videorope"):
        vniahd.get_variant("nope")
    with pytest.raises(VniahdError, match="not int"):
        vniahd.get_variant(3)  # type: ignore[arg-type]
    # checked before the dataset is opened or the model loaded
    with pytest.raises(UnknownNameError, match="unknown variant 'nope'"):
        vniahd.evaluate(tmp_path / "missing", "random:qwen2-vl", ["mrope", "nope"], out=tmp_path / "r")
    assert vniahd.get_variant("videorope:delta=1").name == "videorope:delta=1"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda p: vniahd.evaluate(p / "nil", "random:qwen2-vl", "mrope", out=p / "r"), "does not exist"),
        (
            lambda p: vniahd.evaluate(p, "random:qwen2-vl", "mrope", out=p / "r", scoring="best"),
            "unknown scoring mode 'best'",
        ),
        (lambda p: vniahd.evaluate(p, "random:qwen2-vl", "mrope", out=p / "r", limit=0), "--limit"),
        (lambda p: vniahd.open_dataset(p), "not a vniahd dataset"),
        (lambda p: vniahd.load_model("nope:x"), "unknown model backend 'nope'"),
        (lambda p: vniahd.generate(haystack="demo", needles="demo", out=p / "d", lengths="x"), "length"),
    ],
)
def test_bad_inputs_raise_vniahd_error(tmp_path, call, message):
    with pytest.raises(VniahdError, match=message):
        call(tmp_path)


def test_readme_type_checks_as_user_code(tmp_path):
    """``make lint``'s README check: the example type-checks under ``mypy --strict`` with each
    verb's result of its declared type (not Any), and a misuse is caught."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "check_readme_types.py"
    ok = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "BAD.md"
    misuse = "import vniahd\nimport vniahd.evaluation\ns = vniahd.evaluation('d', 'm', 'mrope', out='r')\n"
    bad.write_text(f"```python\n{misuse}typo = vniahd.evalute\n```\n")
    proc = subprocess.run([sys.executable, str(script), str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Module not callable" in proc.stdout and 'no attribute "evalute"' in proc.stdout


def test_evaluate_signature_and_config_are_one():
    """``vniahd.evaluate``'s option keywords are :class:`EvalConfig`'s fields, one name each."""
    import dataclasses

    from vniahd.evaluation import EvalConfig

    fields = {f.name for f in dataclasses.fields(EvalConfig)}
    params = set(inspect.signature(vniahd.evaluate).parameters)
    placement = {"dataset", "model", "out", "device", "dtype", "frame_mode", "device_map"}
    assert params - placement == fields
    # annotations a type checker resolves (tests/test_api.py::test_readme_type_checks_as_user_code)
    assert inspect.signature(vniahd.evaluate).return_annotation == "Summary"
    assert inspect.signature(vniahd.generate).return_annotation == "Dataset"


def test_eval_config_checks_and_records():
    from vniahd.evaluation import EvalConfig

    config = EvalConfig(variants="mrope", prefill_chunk="16", batch_size="4", cache_dir=Path("c"))
    assert config.prefill_chunk == 16 and config.batch_size == 4
    assert config.to_dict() == {
        "variants": ["mrope"],
        "scoring": "reference",
        "limit": None,
        "prompt_template": config.template.to_dict(),
        "prompt": "reference",
        "max_new_tokens": 8,
        "encode_batch": 16,
        "cache_dir": "c",
        "prefix_sharing": True,
        "prefill_chunk": 16,
        "batch_size": 4,
        "progress": True,
        "attention_scope": "full",
    }
    assert EvalConfig(variants=["mrope"]).prefill_chunk is None  # auto
    for kw, message in (
        ({"variants": []}, "no --variant given"),
        ({"variants": ["mrope"], "scoring": "best"}, "unknown scoring mode 'best'"),
        ({"variants": ["mrope"], "prompt": "fancy"}, "unknown prompt layout 'fancy'"),
        ({"variants": ["mrope"], "limit": 0}, "--limit must be an integer >= 1, got 0"),
        ({"variants": ["mrope"], "max_new_tokens": 0}, "--max-new-tokens must be"),
        ({"variants": ["mrope"], "batch_size": "many"}, "--batch-size must be an integer >= 1 or 'auto'"),
    ):
        with pytest.raises(VniahdError, match=re.escape(message)):
            EvalConfig(**kw)


def test_evaluation_exports_what_a_user_needs():
    import vniahd.evaluation

    assert set(vniahd.evaluation.__all__) == {
        "EvalConfig",
        "Runner",
        "Summary",
        "VariantSummary",
        "read_results",
        "summarize",
        "SCORING_MODES",
        "BackendLike",
        "DatasetLike",
        "TokenizerLike",
    }
