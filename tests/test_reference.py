"""Generated reference docs: README's blocks are the generated text, and they cover every key and command."""

import argparse
import doctest
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import eventhorizon.reference as reference
from eventhorizon.cli import _parser
from eventhorizon.reference import MARKERS, cli_reference, main, scenario_reference, update_readme
from eventhorizon.scenario import Scenario

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FIX = "python3 -m eventhorizon.reference --write README.md"


def block(text, name):
    start, end, _ = MARKERS[name]
    assert text.count(start) == 1 and text.count(end) == 1, f"README.md needs one {start} and one {end}; run `{FIX}`"
    return text[text.index(start) + len(start): text.index(end)]


# --------------------------------------------------------------------------
# README is the generated text
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name, generate", [("scenario", scenario_reference), ("cli", cli_reference)])
def test_readme_block_is_the_generated_reference(name, generate):
    text = README.read_text(encoding="utf-8")
    assert block(text, name) == "\n" + generate().strip("\n") + "\n", \
        f"README.md's {name} reference is out of date: run `{FIX}`"


def test_readme_headings():
    text = README.read_text(encoding="utf-8")
    for name, (start, _, heading) in MARKERS.items():
        assert text.index(heading + "\n") < text.index(start)


def test_check_passes_on_the_repository_readme():
    proc = subprocess.run([sys.executable, "-m", "eventhorizon.reference", "--check", "README.md"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{proc.stderr}\nrun `{FIX}`"


# --------------------------------------------------------------------------
# the scenario reference covers every key
# --------------------------------------------------------------------------


def _sections(text, level):
    """{heading: body} for headings of one level (``###`` or ``####``)."""
    parts = re.split(rf"^{level} (.+)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def _row(body, key):
    rows = [line for line in body.splitlines() if line.startswith(f"| `{key}` |")]
    assert len(rows) == 1, (key, body)
    return rows[0]


def _section_models():
    """(heading path, model) of every section model, union members included."""
    for name, field in Scenario.model_fields.items():
        annotation = field.annotation
        members = [m for m in typing.get_args(annotation) or (annotation,)
                   if isinstance(m, type) and hasattr(m, "model_fields")]
        if len(members) == 1:
            yield (f"`[{name}]`", None), members[0]
        for member in members if len(members) > 1 else ():
            tag = field.discriminator
            value = typing.get_args(member.model_fields[tag].annotation)[0]
            yield (f"`[{name}]`", f'`{tag} = "{value}"`'), member


def test_every_field_of_every_section_model_appears():
    text = scenario_reference()
    sections = _sections(text, "###")
    models = list(_section_models())
    assert len(models) == 12  # 4 generators, 2 sources, dynamics, run, output, flops, learning, plasticity
    for (section, member), model in models:
        body = sections[section]
        if member is not None:
            body = _sections(body, "####")[member]
        for key, field in model.model_fields.items():
            row = _row(body, key)
            if field.description:
                assert field.description in row.replace("\\|", "|"), (key, row)
            assert ("required" in row) == field.is_required(), row


def test_every_top_level_key_appears():
    top = scenario_reference().split("\n### ")[0]
    for key, field in Scenario.model_fields.items():
        assert f"| `{key}` |" in top or f"| `[{key}]` |" in top, key


@pytest.mark.parametrize("section, key, expected", [
    ('`generator = "input_recurrent"`', "spectral_norm", "| float (finite) | required | ≥ 0, < 1 |"),
    ('`generator = "input_recurrent"`', "recurrent_density", "| `1.0` | > 0, ≤ 1 |"),
    ('`generator = "input_recurrent"`', "activation", '`"tanh"`, `"hard_sigmoid"`, `"clipped_relu"` | `"tanh"`'),
    ('`generator = "layered"`', "sizes", "| array of integer (each > 0) | required | at least 2 items |"),
    ('`generator = "layered"`', "feedback", "| boolean | `false` |"),
    ('`generator = "random_sparse"`', "inputs", "| integer | required | ≥ 0 |"),
    ('`generator = "file"`', "path", "weight file, relative to the scenario file"),
    ('`source = "generated"`', "seed", "| integer | not set | ≥ 0 | random seed of the stimuli; default: run.seed + 1"),
    ('`source = "fashion_mnist"`', "split", '| one of `"train"`, `"test"` | not set |  | settling runs: which'),
    ("`[dynamics]`", "epsilon", "| float (finite) | required | > 0 | broadcast threshold ε, in output units"),
    ("`[dynamics]`", "scheduler", '| `"tournament"` |'),
    ("`[run]`", "seed", "| integer | `0` | ≥ 0, < 2**63 - 1 |"),
    ("`[run]`", "checkpoint_seconds", "| `5.0` | > 0 | wall-clock seconds"),
    ("`[run]`", "epochs", "| integer | not set | > 0 | [learning] runs (must be set there)"),
    ("`[learning]`", "beta", "| float (finite) | `0.5` | > 0 | nudging strength β"),
    ("`[plasticity]`", "snapshot_every", "| integer | `10` | > 0 | save the topology"),
    ("`[output]`", "figures", "| boolean | `true` |"),
    ("`[flops]`", "repeats", "| integer | `3` | > 0 |"),
])
def test_rows_show_type_default_constraints_and_units(section, key, expected):
    text = scenario_reference()
    sections = _sections(text, "###")
    if section.startswith("`[") or section in sections:
        body = sections[section]
    else:
        body = next(b for b in (_sections(s, "####") for s in sections.values()) if section in b)[section]
    assert expected in _row(body, key)


def test_built_sections_are_not_marked_reserved():
    top = scenario_reference().split("\n### ")[0]
    for key in ("learning", "plasticity"):
        assert "not implemented" not in _row(top, f"[{key}]")


# --------------------------------------------------------------------------
# the CLI reference covers every subcommand and option
# --------------------------------------------------------------------------


def _subparsers():
    parser = _parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, {name: sub for name, sub in action.choices.items()}


def test_cli_reference_has_every_subcommand_and_option():
    text = cli_reference()
    parser, subs = _subparsers()
    sections = _sections(text, "###")
    assert "`eventhorizon`" in sections and set(subs) <= {s.strip("`").split()[-1] for s in sections}
    for name, sub in subs.items():
        body = sections[f"`{sub.prog}`"]
        assert f"usage: {sub.prog}" in body
        for action in sub._actions:
            for option in action.option_strings:
                assert option in body, (name, option)
            if action.help and action.help is not argparse.SUPPRESS:
                assert " ".join(action.help.split()[:3]) in " ".join(body.split()), (name, action.help)


def test_cli_reference_does_not_depend_on_the_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    narrow = cli_reference()
    monkeypatch.setenv("COLUMNS", "300")
    assert cli_reference() == narrow and "\x1b[" not in narrow


# --------------------------------------------------------------------------
# --write and --check
# --------------------------------------------------------------------------


def test_check_detects_a_stale_readme(tmp_path, capsys):
    path = tmp_path / "README.md"
    current = README.read_text(encoding="utf-8")
    path.write_text(current.replace("| `epsilon` |", "| `epsilon_old` |"), encoding="utf-8")
    assert main(["--check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "out of date" in err and "--write" in err
    assert main(["--write", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == update_readme(current)
    assert main(["--check", str(path)]) == 0


def test_check_detects_a_stale_cli_block(tmp_path):
    path = tmp_path / "README.md"
    path.write_text(update_readme("# x\n").replace("usage: eventhorizon run", "usage: eventhorizon go"),
                    encoding="utf-8")
    assert main(["--check", str(path)]) == 1


def test_write_appends_missing_sections_then_is_idempotent(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("# Project\n\nSome text.\n", encoding="utf-8")
    assert main(["--check", str(path)]) == 1
    assert main(["--write", str(path)]) == 0
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Project\n\nSome text.\n\n## Scenario reference\n\n<!-- scenario-reference:start -->\n")
    assert text.index("## Scenario reference") < text.index("## CLI reference")
    assert text.endswith("<!-- cli-reference:end -->\n")
    assert block(text, "scenario") == "\n" + scenario_reference().strip("\n") + "\n"
    assert main(["--write", str(path)]) == 0 and path.read_text(encoding="utf-8") == text
    assert main(["--check", str(path)]) == 0


def test_write_keeps_text_around_the_blocks(tmp_path):
    start, end, _ = MARKERS["scenario"]
    original = f"# P\n\nbefore\n\n{start}\nold\n{end}\n\nafter\n"
    new = update_readme(original)
    assert new.startswith(f"# P\n\nbefore\n\n{start}\n") and f"{end}\n\nafter\n" in new and "\nold\n" not in new
    assert new.count("## Scenario reference") == 0  # markers present: no heading added
    assert "## CLI reference" in new                  # markers missing: appended


@pytest.mark.parametrize("broken", [
    "<!-- scenario-reference:start -->\nno end\n",
    "<!-- scenario-reference:end -->\n<!-- scenario-reference:start -->\n",
    "<!-- cli-reference:start -->\n<!-- cli-reference:end -->\n<!-- cli-reference:start -->\n",
])
def test_broken_markers_are_an_error(tmp_path, capsys, broken):
    path = tmp_path / "README.md"
    path.write_text(broken, encoding="utf-8")
    assert main(["--check", str(path)]) == 2 and main(["--write", str(path)]) == 2
    assert "markers" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == broken


def test_missing_readme_is_an_error(tmp_path, capsys):
    assert main(["--check", str(tmp_path / "nope.md")]) == 2
    assert "nope.md" in capsys.readouterr().err


def test_without_options_prints_both_references(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## Scenario reference\n") and scenario_reference() in out and cli_reference() in out


def test_docstring_examples():
    result = doctest.testmod(reference, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
