"""Every command the documentation shows still works.

Commands are read from README.md (fenced code blocks, and inline `vniahd …` / `make …` spans) and
from the "example(s):" sections of the ``vniahd COMMAND --help`` epilogs, so a doc that drifts from
the CLI fails here:

- every documented ``vniahd`` command is parsed by the CLI's own parser, and the values that the
  parser only stores as strings (grids, periods, schedules, variants, model specs) are parsed by the
  functions the commands use; ``make`` targets must exist in the Makefile;
- the cheap ones run as shown (``positions``, ``freqs``, ``angles``, ``variants``), and documented output must
  match what the command prints;
- the README workflow (generate → inspect → eval → plot) and the help examples (generate → eval →
  plot) run end to end in a temporary directory on the demo haystack and needles, with the minimum
  of substitutions: a small frame size, ``--limit``, a random-weight model instead of
  ``hf:/models/…``, CPU instead of CUDA;
- the tiny-model examples (training) run with ``--steps 2`` and are marked ``slow``.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path

import pytest

from vniahd.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MAKEFILE = REPO / "Makefile"

# A random-weight stand-in for hf:/models/… (1 layer, hidden 32, head dim 16): seconds on a CPU.
RANDOM_SPEC = "random:qwen2-vl?layers=1&hidden=32&heads=2&kv_heads=1&intermediate=64"
SMALL = ["--size", "28x56"]  # 1 x 2 merged Qwen2-VL tokens per frame
QUICK = ["--limit", "2", "--no-progress"]


# ------------------------------------------------------------------------------- doc extraction
def _join_continuations(lines: list[str]) -> list[str]:
    out, buf = [], ""
    for line in lines:
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        out.append(buf + stripped)
        buf = ""
    if buf:
        out.append(buf)
    return out


def readme_section(title: str) -> str:
    """The text of README.md's ``## title`` section (up to the next ``## ``)."""
    m = re.search(
        rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README.read_text(encoding="utf-8"), re.S | re.M
    )
    assert m, f"README.md lost its '## {title}' section"
    return m.group(1)


def readme_blocks(section: str | None = None) -> list[list[tuple[str, list[str]]]]:
    """Fenced blocks of README.md (or of its ``## section``) as [(command, documented output
    lines)]. In a block with ``$ `` prompts only prompted lines are commands (the rest is their
    output); otherwise every line that starts with ``vniahd`` or ``make`` is one."""
    text = README.read_text(encoding="utf-8") if section is None else readme_section(section)
    blocks = []
    for body in re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M):
        lines = body.splitlines()
        cmds: list[tuple[str, list[str]]] = []
        if any(line.startswith("$ ") for line in lines):
            for line in lines:
                if line.startswith("$ "):
                    cmds.append((line[2:], []))
                elif cmds and line.strip():
                    cmds[-1][1].append(line)
        else:
            cmds = [(c, []) for c in _join_continuations(lines)]
        blocks.append(
            [
                (shlex.join(shlex.split(c, comments=True)), out)
                for c, out in cmds
                if c.strip().startswith(("vniahd ", "make "))
            ]
        )
    return blocks


def readme_commands(section: str | None = None) -> list[str]:
    return [cmd for block in readme_blocks(section) for cmd, _ in block]


def readme_inline() -> list[str]:
    """Inline code spans outside fenced blocks."""
    text = re.sub(r"^```.*?^```", "", README.read_text(encoding="utf-8"), flags=re.S | re.M)
    return re.findall(r"`([^`\n]+)`", text)


def subparsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) of every subcommand, nested ones included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield path + (name,), sub
                yield from subparsers(sub, path + (name,))


def epilog_examples(epilog: str) -> list[str]:
    """Commands listed under an ``example:`` / ``Examples:`` line, up to the next blank line."""
    found, inside, section = [], False, []
    for line in epilog.splitlines() + [""]:
        if re.fullmatch(r"\s*examples?:\s*", line, flags=re.I):
            inside, section = True, []
        elif inside and not line.strip():
            found += [c.strip() for c in _join_continuations(section) if c.strip().startswith("vniahd ")]
            inside = False
        elif inside:
            section.append(line)
    return found


def help_examples() -> list[tuple[str, str]]:
    """(command path, example) for every help epilog's examples."""
    out = []
    for path, sub in subparsers(build_parser()):
        for cmd in epilog_examples(sub.epilog or ""):
            out.append((" ".join(path), shlex.join(shlex.split(cmd))))
    return out


def argv_of(cmd: str) -> list[str]:
    argv = shlex.split(cmd, comments=True)
    assert argv[0] == "vniahd", cmd
    return argv[1:]


def one(commands: list[str], prefix: str, *, contains: str = "") -> str:
    """The single documented command starting with ``prefix`` (and holding ``contains``)."""
    hits = [c for c in commands if c.startswith(prefix) and contains in c]
    assert len(hits) == 1, f"expected one documented '{prefix} … {contains}' command, found {hits}"
    return hits[0]


def substitute(
    argv: list[str],
    values: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
    extra: list[str] | None = None,
) -> list[str]:
    """Replace option values (``{"--model": SPEC}``), drop options with their value, append
    ``extra`` (argparse keeps the last value of an option given twice)."""
    values, out, i = values or {}, [], 0
    while i < len(argv):
        tok = argv[i]
        if tok in drop:
            i += 2
            continue
        out.append(tok)
        if tok in values and i + 1 < len(argv):
            out.append(values[tok])
            i += 2
            continue
        i += 1
    return out + list(extra or [])


# ------------------------------------------------------------------------------------- checks
def check_values(ns: argparse.Namespace) -> None:
    """Parse the option values that argparse keeps as plain strings, as the commands do."""
    from vniahd.models.registry import BACKENDS, parse_spec
    from vniahd.rope import parse_variant

    variants = getattr(ns, "variant", None)
    for spec in variants if isinstance(variants, list) else [variants] if variants else []:
        parse_variant(spec)
    if getattr(ns, "command", None) == "demo":
        for spec in ns.variants.split(","):
            parse_variant(spec)
        [int(s) for s in ns.seeds.split(",")]
    if getattr(ns, "model", None):
        assert parse_spec(ns.model)[0] in BACKENDS, ns.model
    if getattr(ns, "command", None) == "generate":
        from vniahd.media import parse_size
        from vniahd.plan import get_schedule, parse_depths, parse_lengths, parse_period

        parse_lengths(ns.lengths)
        parse_depths(ns.depths)
        get_schedule(ns.schedule)
        parse_period(ns.period)
        parse_size(ns.size)


def parse_documented(cmd: str) -> argparse.Namespace:
    try:
        ns = build_parser().parse_args(argv_of(cmd))
    except SystemExit as exc:
        pytest.fail(f"documented command no longer parses (exit {exc.code}): {cmd}")
    assert getattr(ns, "func", None), f"documented command names no runnable subcommand: {cmd}"
    check_values(ns)
    return ns


def run_ok(argv: list[str], cwd: Path, monkeypatch) -> None:
    monkeypatch.chdir(cwd)
    assert main(argv) == 0, f"vniahd {shlex.join(argv)} failed (stderr above)"


def test_docs_yield_commands():
    """The extraction itself: a README or epilog reshuffle must not silently leave nothing to test."""
    shown = {argv_of(c)[0] for c in readme_commands() if c.startswith("vniahd ")}
    assert {"generate", "inspect", "eval", "plot", "positions", "freqs"} <= shown
    assert {"make demo", "make test"} <= set(readme_commands())
    with_examples = {
        " ".join(path)
        for path, sub in subparsers(build_parser())
        if re.search(r"^\s*examples?:", sub.epilog or "", flags=re.I | re.M)
    }
    assert with_examples == {path for path, _ in help_examples()}  # each such epilog yields commands
    assert {"generate", "eval", "plot", "positions", "freqs", "angles", "train-tiny"} <= with_examples


def short(cmd: str) -> str:
    """A readable test id."""
    return cmd if len(cmd) <= 72 else cmd[:69] + "..."


@pytest.mark.parametrize("cmd", [c for c in readme_commands() if c.startswith("vniahd ")], ids=short)
def test_readme_command_parses(cmd):
    parse_documented(cmd)


@pytest.mark.parametrize("path, cmd", help_examples(), ids=[f"{p}: {short(c)}" for p, c in help_examples()])
def test_help_example_parses(path, cmd):
    parse_documented(cmd)


def test_every_help_renders():
    parser = build_parser()
    assert "generate" in parser.format_help()
    for path, sub in subparsers(parser):
        assert sub.format_help().startswith("usage: vniahd " + " ".join(path)), path


@pytest.mark.parametrize(
    "target",
    sorted(
        {c.split()[1] for c in readme_commands() if c.startswith("make ")}
        | {s.split()[1] for s in readme_inline() if s.startswith("make ")}
    ),
)
def test_readme_make_targets_exist(target):
    targets = set(re.findall(r"^([A-Za-z0-9_.-]+):", MAKEFILE.read_text(), flags=re.M))
    assert target in targets


def test_readme_inline_commands_name_real_options():
    """Inline spans (`vniahd demo --seeds 0,1`, `vniahd eval --model hf:PATH`) are often partial:
    the subcommand and every option they name must exist. `--variant SPEC` spans must parse."""
    from vniahd.rope import parse_variant

    spans = readme_inline()
    cmds = [s for s in spans if s.startswith("vniahd ")]
    assert cmds
    for span in cmds:
        tokens, parser = shlex.split(span)[1:], build_parser()
        while tokens and not tokens[0].startswith("-"):
            subs = dict(subparsers(parser))
            if (tokens[0],) not in subs:
                break
            parser = subs[(tokens[0],)]
            tokens = tokens[1:]
        assert parser.prog != "vniahd", f"no subcommand in `{span}`"
        for tok in tokens:
            if tok.startswith("--"):
                assert tok.split("=")[0] in parser._option_string_actions, f"`{span}`: unknown {tok}"
    variant_spans = [s.split(None, 1)[1] for s in spans if s.startswith("--variant ")]
    assert variant_spans
    for spec in variant_spans:
        if not spec.endswith(".json"):
            parse_variant(spec)


# ------------------------------------------------------------------------ cheap commands, run
@pytest.mark.parametrize(
    "cmd",
    [
        c
        for c in readme_commands() + [c for _, c in help_examples()]
        if c.split()[1] in ("positions", "freqs", "angles", "variants")
    ],
    ids=short,
)
def test_rope_commands_run_as_documented(cmd, capsys):
    assert main(argv_of(cmd)) == 0
    out = capsys.readouterr().out
    if "--json" in cmd:
        record = json.loads(out)
        assert record["variant"] == argv_of(cmd)[argv_of(cmd).index("--variant") + 1]
    assert out.strip()


def test_readme_shown_output_is_current(capsys):
    """Output lines the README prints after a `$ vniahd …` prompt appear, in order, in the output."""
    shown = [(cmd, out) for block in readme_blocks() for cmd, out in block if out]
    assert shown
    for cmd, lines in shown:
        assert main(argv_of(cmd)) == 0
        actual = capsys.readouterr().out.splitlines()
        pos = 0
        for line in lines:
            assert line in actual[pos:], f"README shows {line!r} for `{cmd}`; it now prints:\n" + "\n".join(
                actual
            )
            pos = actual.index(line, pos) + 1


def test_readme_inline_variants_command_runs(capsys):
    assert "vniahd variants" in readme_inline()
    assert main(["variants"]) == 0
    assert "videorope" in capsys.readouterr().out


# ---------------------------------------------------------------------- end to end, tiny inputs
def test_readme_workflow_runs_end_to_end(demo_haystack, tmp_path, monkeypatch, capsys):
    """README "The workflow": the five commands, in the README's order and relative paths."""
    cmds = readme_commands("The workflow")
    gen = argv_of(one(cmds, "vniahd generate"))
    # "--haystack demo and --needles demo … so every command above can be tried" (the demo
    # needle set takes "--distractor-needles demo" or none).
    gen = substitute(
        gen, {"--haystack": "demo", "--needles": "demo", "--distractor-needles": "demo"}, extra=SMALL
    )
    run_ok(gen, tmp_path, monkeypatch)
    assert (tmp_path / gen[gen.index("--out") + 1] / "dataset.json").is_file()

    capsys.readouterr()
    inspect = argv_of(one(cmds, "vniahd inspect", contains="--sample"))
    run_ok(argv_of(one([c for c in cmds if "--sample" not in c], "vniahd inspect")), tmp_path, monkeypatch)
    assert "schedule" in capsys.readouterr().out
    run_ok(inspect, tmp_path, monkeypatch)  # the README's own sample id exists on its grid
    sheet = tmp_path / inspect[inspect.index("--out") + 1]
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    ev = argv_of(one(cmds, "vniahd eval"))
    assert ev[ev.index("--model") + 1].startswith("hf:")  # real weights: stand-in below
    run_ok(substitute(ev, {"--model": RANDOM_SPEC, "--device": "cpu"}, extra=QUICK), tmp_path, monkeypatch)
    results = tmp_path / ev[ev.index("--out") + 1]
    lines = [json.loads(x) for x in (results / "results.jsonl").read_text().splitlines()]
    variants = [ev[i + 1] for i, tok in enumerate(ev) if tok == "--variant"]
    assert sorted(r["variant"] for r in lines) == sorted(variants * 2)
    assert json.loads((results / "run.json").read_text())["model"]["spec"] == RANDOM_SPEC

    plot = argv_of(one(cmds, "vniahd plot"))
    run_ok(plot, tmp_path, monkeypatch)
    report = tmp_path / plot[plot.index("--out") + 1]
    baseline = plot[plot.index("--baseline") + 1]
    assert (report / "report.html").is_file() and (report / "compare.png").is_file()
    deltas = {f"delta_{v}.png" for v in variants if v != baseline}
    assert {p.name for p in report.glob("delta_*.png")} == deltas


def test_help_examples_run_end_to_end(demo_haystack, tmp_path, monkeypatch, capsys):
    """`vniahd generate --help` example → `vniahd eval --help` example (its dataset) →
    `vniahd plot --help` examples that need no other files."""
    examples = [c for _, c in help_examples()]
    gen = argv_of(one(examples, "vniahd generate --haystack demo"))
    run_ok(gen + SMALL, tmp_path, monkeypatch)
    ev = argv_of(one(examples, "vniahd eval", contains="random:"))
    assert ev[ev.index("--dataset") + 1] == gen[gen.index("--out") + 1]  # the examples chain
    run_ok(ev + QUICK, tmp_path, monkeypatch)
    results = ev[ev.index("--out") + 1]
    assert len((tmp_path / results / "results.jsonl").read_text().splitlines()) == 2 * ev.count("--variant")

    plots = [argv_of(c) for c in examples if c.startswith("vniahd plot ")]
    ran = 0
    for plot in plots:
        inputs = plot[1 : plot.index("--out")]
        if sum(not p.endswith(".json") for p in inputs) > 1:
            continue  # several results directories (V-NIAH and V-NIAH-D runs): parsed above only
        for src in inputs:  # results/run → this run; a reference all_accuracies.json → a small one
            path = tmp_path / src
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if src.endswith(".json"):
                path.write_text(
                    json.dumps(
                        [
                            {"Num. Frame": 100, "Frame Depth": 0.0, "Score": 0.8},
                            {"Num. Frame": 100, "Frame Depth": 100.0, "Score": 0.4},
                        ]
                    )
                )
            else:
                path.symlink_to(tmp_path / results, target_is_directory=True)
        run_ok(plot, tmp_path, monkeypatch)
        assert (tmp_path / plot[plot.index("--out") + 1] / "report.html").is_file()
        ran += 1
    assert ran >= 2


# -------------------------------------------------------------------------- tiny model (slow)
def _tiny_example(prefix: str) -> list[str]:
    return argv_of(one([c for path, c in help_examples() if path == "train-tiny"], prefix))


@pytest.mark.slow
@pytest.mark.integration
def test_train_tiny_example_runs(demo_haystack, tmp_path, monkeypatch):
    """`vniahd train-tiny --help` example, 2 optimiser steps instead of the recipe's."""
    from vniahd.files import cache_dir

    argv = _tiny_example("vniahd train-tiny") + ["--steps", "2", "--no-progress"]
    run_ok(argv, tmp_path, monkeypatch)
    metas = [json.loads(p.read_text()) for p in cache_dir("tiny", "checkpoints").glob("*/tiny.json")]
    assert any(
        m.get("steps") == 2 and m.get("variant_name") == argv[argv.index("--variant") + 1] for m in metas
    )


@pytest.mark.slow
@pytest.mark.integration
def test_eval_tiny_example_runs(demo_haystack, tmp_path, monkeypatch):
    """`vniahd train-tiny --help`'s eval example (`--model tiny`), training on demand for 2 steps."""
    run_ok(
        [
            "generate",
            "--haystack",
            "demo",
            "--needles",
            "demo",
            "--lengths",
            "8,16",
            "--depths",
            "0:1:0.5",
            "--period",
            "4",
            "--out",
            "data/tiny",
            *SMALL,
        ],
        tmp_path,
        monkeypatch,
    )
    ev = substitute(
        _tiny_example("vniahd eval"),
        {"--dataset": "data/tiny", "--model": "tiny?train=1&steps=2"},
        extra=QUICK,
    )
    run_ok(ev, tmp_path, monkeypatch)
    lines = (tmp_path / ev[ev.index("--out") + 1] / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_readme_contact_sheet_caption_matches_the_plan():
    """The contact-sheet caption's needle slot and distractor gap are what the README's generate
    command plans for the sample its inspect command shows."""
    from vniahd.plan import parse_period, plan_samples

    text = README.read_text(encoding="utf-8")
    caption = re.search(r"needle \(green\) at slot (\d+), distractor \(red\) (\d+) slots later", text)
    assert caption, "README.md lost its contact-sheet caption"
    commands = readme_commands()
    gen = parse_documented(one(commands, "vniahd generate", contains="--schedule reference"))
    sample = argv_of(one(commands, "vniahd inspect", contains="--sample"))
    sample_id = sample[sample.index("--sample") + 1]
    length, depth = re.match(r"L(\d+)_D([\d.]+)_", sample_id).groups()  # type: ignore[union-attr]
    planned = plan_samples(
        lengths=[int(length)],
        depths=[depth],
        needles=[("red-cat", 1)],
        schedule=gen.schedule,
        period=parse_period(gen.period).frames,
        seed=gen.seed,
        haystack_frames=502,  # the demo haystack; the slots do not depend on it
    )
    (s,) = planned
    assert s.needle_slot == int(caption.group(1))
    assert [abs(d - s.needle_slot) for d in s.distractor_slots] == [int(caption.group(2))]
