"""Reference documentation generated from the code: scenario keys and CLI usage.

The scenario reference is built from the pydantic models in
:mod:`eventhorizon.scenario` (every section, every generator or source, every
key with its type, default, constraints and description); the CLI reference is
argparse's own help for :func:`eventhorizon.cli._parser` and each subcommand.
Neither is written by hand, so neither can drift from the code.

README.md holds both between markers::

    <!-- scenario-reference:start --> … <!-- scenario-reference:end -->
    <!-- cli-reference:start --> … <!-- cli-reference:end -->

Regenerate them with ``python3 -m eventhorizon.reference --write README.md``;
``--check README.md`` exits 1 if README.md is out of date (the test suite
checks it too).
"""

import argparse
import functools
import re
import sys
import types
import typing
from pathlib import Path

import annotated_types
from pydantic import BaseModel

__all__ = ["scenario_reference", "cli_reference", "update_readme", "README", "MARKERS", "main"]

README = Path(__file__).resolve().parent.parent / "README.md"

#: block name → (start marker, end marker, heading used when the block is appended)
MARKERS = {
    "scenario": ("<!-- scenario-reference:start -->", "<!-- scenario-reference:end -->", "## Scenario reference"),
    "cli": ("<!-- cli-reference:start -->", "<!-- cli-reference:end -->", "## CLI reference"),
}

HELP_WIDTH = 100  # columns of the CLI help text: fixed, so the output does not depend on the terminal
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # argparse may colour help on a terminal (Python ≥ 3.14)


# --------------------------------------------------------------------------
# scenario reference
# --------------------------------------------------------------------------


def _md(text):
    """Docstring text (reST) as one Markdown table cell or paragraph."""
    text = " ".join(text.split()).replace("``", "`")
    return text.replace("|", "\\|")


def _summary(cls):
    """First paragraph of a class docstring."""
    return _md((cls.__doc__ or "").strip().split("\n\n")[0])


def _number(value):
    """A bound as written in the reference: ``0.5``, ``784``, ``2**63 - 1``."""
    if isinstance(value, int) and abs(value) > 2**32:
        power = value.bit_length() if value > 0 else (-value).bit_length()
        for k in (power - 1, power):
            if abs(abs(value) - 2**k) <= 2:
                rest = abs(value) - 2**k
                text = f"2**{k}" + (f" + {rest}" if rest > 0 else f" - {-rest}" if rest < 0 else "")
                return text if value > 0 else f"-({text})"
    return repr(value)


def _constraints(metadata):
    """``> 0``, ``≤ 1``, ``at least 2 items`` … from pydantic/annotated-types metadata."""
    out = []
    for item in metadata:
        if isinstance(item, annotated_types.Gt):
            out.append(f"> {_number(item.gt)}")
        elif isinstance(item, annotated_types.Ge):
            out.append(f"≥ {_number(item.ge)}")
        elif isinstance(item, annotated_types.Lt):
            out.append(f"< {_number(item.lt)}")
        elif isinstance(item, annotated_types.Le):
            out.append(f"≤ {_number(item.le)}")
        elif isinstance(item, annotated_types.MinLen):
            out.append(f"at least {item.min_length} items")
        elif isinstance(item, annotated_types.MaxLen):
            out.append(f"at most {item.max_length} items")
        elif hasattr(item, "metadata"):  # a FieldInfo inside Annotated[...]
            out.extend(_constraints(item.metadata))
    return out


_TYPE_NAMES = {int: "integer", float: "float", bool: "boolean", str: "string", dict: "table"}


def _type_text(annotation, finite):
    """(type text, item constraints) of a field annotation; ``None`` is left out (it means "not set")."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        parts = [_type_text(a, finite) for a in args if a is not type(None)]
        return " or ".join(p[0] for p in parts), [c for p in parts for c in p[1]]
    if origin is typing.Literal and len(args) == 1:
        return f'`"{args[0]}"`' if isinstance(args[0], str) else f"`{args[0]}`", []
    if origin is typing.Literal:
        return "one of " + ", ".join(f'`"{v}"`' if isinstance(v, str) else f"`{v}`" for v in args), []
    if origin is typing.Annotated:
        text, extra = _type_text(args[0], finite)
        return text, extra + _constraints(args[1:])
    if origin is list:
        text, item = _type_text(args[0], finite) if args else ("value", [])
        return f"array of {text}" + (f" (each {', '.join(item)})" if item else ""), []
    name = _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))
    return (f"{name} (finite)" if annotation is float and finite else name), []


def _toml_literal(value):
    import tomli_w

    return tomli_w.dumps({"v": value}).partition("=")[2].strip()


def _is_reserved(field):
    return (field.description or "").lower().startswith("reserved")


def _default_text(field):
    if field.is_required():
        return "required"
    if _is_reserved(field):
        return "— (refused if set: not implemented yet)"
    if field.default is None:
        return "not set"
    if isinstance(field.default, BaseModel):
        return "all defaults"
    return f"`{_toml_literal(field.default)}`"


def _rows(model, tag=None):
    finite = model.model_config.get("allow_inf_nan") is False
    rows = ["| key | type | default | constraints | description |", "|---|---|---|---|---|"]
    for name, field in model.model_fields.items():
        kind, item_constraints = _type_text(field.annotation, finite)
        constraints = ", ".join(_constraints(field.metadata) + item_constraints)
        description = field.description or ("selects this kind" if name == tag else "")
        rows.append(f"| `{name}` | {_md(kind)} | {_md(_default_text(field))} | {_md(constraints)} | "
                    f"{_md(description)} |")
    return rows


def _members(annotation):
    """Section models of a field annotation: one, or several (a discriminated union)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        return _members(args[0])
    candidates = args if typing.get_origin(annotation) in (typing.Union, types.UnionType) else (annotation,)
    return [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]


def _discriminator(field, members):
    """The key whose value selects a union member (``generator``, ``source``)."""
    if isinstance(field.discriminator, str):
        return field.discriminator
    shared = set.intersection(*(set(m.model_fields) for m in members))
    for name in sorted(shared):  # fallback: a key that is a different one-value Literal in every member
        tags = [typing.get_args(m.model_fields[name].annotation) for m in members]
        if all(len(t) == 1 for t in tags) and len({t[0] for t in tags}) == len(tags):
            return name
    return None


def _seeds_note():
    from eventhorizon import scenario

    for paragraph in (scenario.__doc__ or "").split("\n\n"):
        if paragraph.strip().startswith("Seeds:"):
            return _md(paragraph)
    return None


def scenario_reference():
    """The scenario file reference, as Markdown, generated from the pydantic models.

    One table of top-level keys, then one section per table (``[network]``,
    ``[input]``, …); a section with several kinds (a generator, a source) has
    one table per kind. Each row gives the key, its type or allowed values,
    its default (or "required"), constraints such as ``> 0`` or ``≤ 1``, and
    its description with units.

    Returns
    -------
    str
        Markdown (headings start at level 3, so it nests under a ``##`` heading).

    Examples
    --------
    >>> text = scenario_reference()
    >>> '#### `generator = "file"`' in text and "| `epsilon` | float (finite) | required | > 0 |" in text
    True
    >>> print(next(line for line in text.splitlines() if line.startswith("| `spectral_norm`")))
    | `spectral_norm` | float (finite) | required | ≥ 0, < 1 | spectral norm of the hidden-to-hidden weights (dimensionless) |
    """
    from eventhorizon.scenario import Scenario
    from eventhorizon.spiking.scenario import SpikingScenario
    from eventhorizon.stream_scenario import StreamScenario

    out = ["A scenario is a TOML file. Top-level keys and tables:", ""] + _model_reference(Scenario, "###")
    out += ["", "### Spiking scenarios", "",
            '`[dynamics] mode = "spiking"` selects this schema (units are in the key names). Top-level keys and '
            "tables:", ""] + _model_reference(SpikingScenario, "####")
    out += ["", "### Streaming scenarios", "",
            '`[dynamics] mode = "stream"` selects this schema: a trained classifier re-settles by events after '
            "every frame of a video-like stream (`eventhorizon run`, `--realtime`, `eventhorizon serve`). "
            "Top-level keys and tables:", ""] + _model_reference(StreamScenario, "####")
    return "\n".join(out) + "\n"


def _model_reference(model, heading):
    """The tables of one scenario schema: top-level keys, then one section per table."""
    top = ["| key | kind | default | description |", "|---|---|---|---|"]
    sections = []
    for name, field in model.model_fields.items():
        members = _members(field.annotation)
        if not members:
            kind, _ = _type_text(field.annotation, True)
            key = f"[{name}]" if kind == "table" else name
            top.append(f"| `{key}` | {_md(kind)} | {_md(_default_text(field))} | {_md(field.description or '')} |")
            continue
        tag = _discriminator(field, members) if len(members) > 1 else None
        what = (f"one of {len(members)} kinds, chosen by `{tag}`" if tag else _summary(members[0]))
        top.append(f"| `[{name}]` | table | {_md(_default_text(field))} | {what} |")
        sections.append((name, members, tag))
    out = top
    note = _seeds_note() if model.__name__ == "Scenario" else ""
    if note:
        out += ["", note]
    for name, members, tag in sections:
        out += ["", f"{heading} `[{name}]`", ""]
        if tag is None:
            out += [_summary(members[0]), ""] + _rows(members[0])
            continue
        values = [typing.get_args(m.model_fields[tag].annotation)[0] for m in members]
        out += [f"One of {len(members)} kinds, chosen by `{tag}`: " + ", ".join(f'`"{v}"`' for v in values) + "."]
        for member, value in zip(members, values):
            out += ["", f'{heading}# `{tag} = "{value}"`', "", _summary(member), ""] + _rows(member, tag)
    return out


# --------------------------------------------------------------------------
# CLI reference
# --------------------------------------------------------------------------


def _help_text(parser):
    parser.formatter_class = functools.partial(argparse.HelpFormatter, width=HELP_WIDTH)
    return _ANSI.sub("", parser.format_help()).rstrip() + "\n"


def _subcommands(parser):
    """(name, one-line help, parser) of every subcommand, in the order ``--help`` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                yield choice.dest, choice.help or "", action.choices[choice.dest]


def cli_reference():
    """The command-line reference, as Markdown: argparse's help for ``eventhorizon`` and each subcommand.

    The help text is argparse's own output (formatted at a fixed width of
    ``HELP_WIDTH`` columns) in code blocks, so it is exactly what
    ``eventhorizon <command> --help`` prints on a wide terminal.

    Returns
    -------
    str
        Markdown (headings start at level 3).

    Examples
    --------
    >>> text = cli_reference()
    >>> text.startswith("### `eventhorizon`") and "### `eventhorizon validate`" in text
    True
    >>> "usage: eventhorizon validate [-h] SCENARIO [SCENARIO ...]" in text
    True
    """
    from eventhorizon.cli import _parser

    parser = _parser()
    out = [f"### `{parser.prog}`", "", "```text", _help_text(parser).rstrip(), "```"]
    for name, summary, sub in _subcommands(parser):
        out += ["", f"### `{sub.prog}`", ""]
        if summary:
            out += [_md(summary[:1].upper() + summary[1:]) + ".", ""]
        out += ["```text", _help_text(sub).rstrip(), "```"]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# README blocks
# --------------------------------------------------------------------------


def _generated():
    return {"scenario": scenario_reference(), "cli": cli_reference()}


def update_readme(text, blocks=None):
    """``text`` (a README) with the generated blocks put between their markers.

    A block whose markers are missing is appended at the end under its own
    ``##`` heading, markers included.

    Parameters
    ----------
    text : str
        The README's current content.
    blocks : dict, optional
        ``{"scenario": markdown, "cli": markdown}``; generated if not given.

    Raises
    ------
    ValueError
        A start marker without its end marker (or the end before the start),
        or a marker that appears twice.

    Examples
    --------
    >>> new = update_readme("# Title\\n", {"scenario": "keys\\n", "cli": "usage\\n"})
    >>> print(new)
    # Title
    <BLANKLINE>
    ## Scenario reference
    <BLANKLINE>
    <!-- scenario-reference:start -->
    keys
    <!-- scenario-reference:end -->
    <BLANKLINE>
    ## CLI reference
    <BLANKLINE>
    <!-- cli-reference:start -->
    usage
    <!-- cli-reference:end -->
    <BLANKLINE>
    >>> update_readme(new, {"scenario": "keys\\n", "cli": "usage\\n"}) == new
    True
    >>> update_readme(new, {"scenario": "other keys\\n", "cli": "usage\\n"}).count("other keys")
    1
    """
    blocks = _generated() if blocks is None else blocks
    for name, (start, end, heading) in MARKERS.items():
        body = "\n" + blocks[name].strip("\n") + "\n"
        counts = text.count(start), text.count(end)
        if counts == (0, 0):
            text = text.rstrip("\n") + f"\n\n{heading}\n\n{start}{body}{end}\n"
            continue
        i, j = text.find(start), text.find(end)
        if counts != (1, 1) or j < i:
            raise ValueError(f"README markers {start} … {end} must each appear once, in that order "
                             f"(found {counts[0]} and {counts[1]})")
        text = text[: i + len(start)] + body + text[j:]
    return text


def main(argv=None):
    """``python3 -m eventhorizon.reference [--write README | --check README]``; returns the exit code.

    Without an option, prints both references to stdout. ``--write`` updates
    the README in place; ``--check`` returns 1 if it is out of date (and
    says how to fix it), 0 if it is current, 2 if it cannot be read or its
    markers are broken.
    """
    parser = argparse.ArgumentParser(prog="python3 -m eventhorizon.reference",
                                     description="Generate the scenario and CLI reference (Markdown).")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", nargs="?", const=README, type=Path, metavar="README",
                       help=f"replace the reference blocks in README (default: {README.name} of the repository)")
    group.add_argument("--check", nargs="?", const=README, type=Path, metavar="README",
                       help="exit 1 if README's reference blocks are out of date")
    args = parser.parse_args(argv)
    path = args.write or args.check
    if path is None:
        blocks = _generated()
        sys.stdout.write("## Scenario reference\n\n" + blocks["scenario"] + "\n## CLI reference\n\n" + blocks["cli"])
        return 0
    try:
        current = path.read_text(encoding="utf-8")
        updated = update_readme(current)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"eventhorizon.reference: {path}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if updated != current:
            print(f"{path} is out of date: run `python3 -m eventhorizon.reference --write {path}`", file=sys.stderr)
            return 1
        print(f"{path}: reference is up to date")
        return 0
    if updated != current:
        path.write_text(updated, encoding="utf-8")
        print(f"{path}: reference updated")
    else:
        print(f"{path}: reference already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
