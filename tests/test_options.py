"""Options declared once: the CLI flags and the studio forms come from the same declarations, with the same
defaults and the same error messages, and the old literal defaults are written in one place only."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.widgets import ContentSwitcher, Select, Static

from curation.dedupe import DEDUPE
from curation.errors import UserError
from curation.export import EXPORT
from curation.filters import FILTER
from curation.option_lists import ListOption, SharesOption
from curation.options import DateTimeOption, FloatOption, IntOption, Option, OptionSet, TextOption
from curation.oversample import OVERSAMPLE
from curation.rebalance import REBALANCE, SNAPSHOT
from curation.slices import SLICES, SLICES_DEFINE
from curation.splits import SPLIT_CHECK, SPLIT_MAKE
from curation.teacher.options import BATCH_SUBMIT, GENERATE, SYNTH, SYNTH_FULFIL, TEACHERS_ADD
from curation.team import ASSIGN
from distill.cli import build_parser, main
from studio.widgets.option_form import OptionForm
from train.bars import BAR
from train.config import EVAL, TRAIN
from train.rounds.options import HISTORY, ROUND

ROOT = Path(__file__).resolve().parents[1]

# Every declared operation, by the CLI command its flags are added to.
DECLARED: dict[tuple[str, ...], OptionSet] = {
    ("slices",): SLICES,
    ("slices", "define"): SLICES_DEFINE,
    ("dedupe",): DEDUPE,
    ("split", "make"): SPLIT_MAKE,
    ("split", "check"): SPLIT_CHECK,
    ("filter",): FILTER,
    ("rebalance",): REBALANCE,
    ("oversample",): OVERSAMPLE,
    ("versions", "snapshot"): SNAPSHOT,
    ("export",): EXPORT,
    ("teachers", "add"): TEACHERS_ADD,
    ("generate",): GENERATE,
    ("batch", "submit"): BATCH_SUBMIT,
    ("synth", "run"): SYNTH,
    ("synth", "fulfil"): SYNTH_FULFIL,
    ("train",): TRAIN,
    ("eval",): EVAL,
    ("bar", "set"): BAR,
    ("review", "assign"): ASSIGN,
    ("round", "next"): ROUND,
    ("round", "history"): HISTORY,
}
# Arguments those commands need that are not options of the operation (what to work on).
EXTRA = {("versions", "snapshot"): ["v1"], ("train",): ["--data", "train.parquet"], ("eval",): ["1"]}
# Values the commands need before they parse their options (a filter without a name lists the runs).
NEEDED = {("filter",): {"name": "lowconf"}}


def _fill(path: tuple[str, ...], opts: OptionSet) -> dict[str, str]:
    """A value for each option that has to be given (no default)."""
    out = {o.name: "3" if isinstance(o, IntOption) else "x" for o in opts if o.required and o.default is None}
    return out | NEEDED.get(path, {})


def _argv(opts: OptionSet, values: dict[str, str]) -> list[str]:
    out: list[str] = []
    for name, value in values.items():
        o = opts[name]
        out += [value] if o.positional else [o.flag, value]
    return out


def _subparser(path: tuple[str, ...]) -> argparse.ArgumentParser:
    p = build_parser()
    for name in path:
        act = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
        p = act.choices[name]
    return p


def _set(form: OptionForm, name: str, value: str) -> None:
    """Type a value into a field (a teacher is offered first, as the teacher screen does from the workspace)."""
    if isinstance(form.field(name), Select) and value not in getattr(form.options[name], "choices", ()):
        form.set_choices(name, [value])
    form.set_value(name, value)


class Forms(App[None]):
    """Every declaration as a studio form, one shown at a time (laying out all of them on each pause took minutes)."""

    def compose(self) -> ComposeResult:
        with ContentSwitcher(initial="form0"):
            for i, opts in enumerate(DECLARED.values()):
                yield OptionForm(opts, prefix=f"f{i}", id=f"form{i}")

    def form(self, path: tuple[str, ...]) -> OptionForm:
        """Show the declaration's form and return it."""
        name = f"form{list(DECLARED).index(path)}"
        self.query_one(ContentSwitcher).current = name
        return self.query_one(f"#{name}", OptionForm)


def test_every_cli_command_with_options_uses_a_declaration() -> None:
    for path, opts in DECLARED.items():
        dests = {a.dest for a in _subparser(path)._actions}
        assert set(opts.names) <= dests, (path, set(opts.names) - dests)


async def test_cli_and_studio_expose_the_same_parameters_and_defaults() -> None:
    app = Forms()
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        for path, opts in DECLARED.items():
            fill = _fill(path, opts)
            cli = opts.from_args(_subparser(path).parse_args(EXTRA.get(path, []) + _argv(opts, fill)))
            form = app.form(path)
            assert form.options is opts
            for name, value in fill.items():
                _set(form, name, value)
            await pilot.pause()
            studio = form.values()
            assert list(studio) == list(cli) == opts.names, path
            assert studio == cli, path
            for o in opts:
                if o.default is not None:
                    assert cli[o.name] == o.parse(o.default), (path, o.name)


def _bad(o: Option) -> Iterator[str]:
    """Values each option refuses."""
    if isinstance(o, SharesOption):
        yield "billing:0.2"
    elif isinstance(o, ListOption):
        if o.item is not str:
            yield "1,x" if o.item is int else "no_such_metric"
    elif isinstance(o, IntOption):
        yield "2.5"
        if o.minimum is not None:
            yield str(int(o.minimum) - 1)
    elif isinstance(o, FloatOption):
        yield "lots"
        if o.maximum is not None:
            yield f"{o.maximum + 1:g}"
        elif o.minimum is not None:
            yield f"{o.minimum - 1:g}"
    elif isinstance(o, DateTimeOption):
        yield "yesterday"
    elif isinstance(o, TextOption) and o.read is not None:
        yield "{bad"


CASES = [(path, o.name, bad) for path, opts in DECLARED.items() for o in opts for bad in _bad(o)]


def test_the_error_cases_cover_every_option_type() -> None:
    kinds = {type(DECLARED[p][name]) for p, name, _ in CASES}
    assert {SharesOption, ListOption, IntOption, FloatOption, DateTimeOption, TextOption} <= kinds
    assert len(CASES) > 50


async def test_a_bad_value_gives_the_same_message_in_the_cli_and_the_studio(ws) -> None:  # type: ignore[no-untyped-def]
    wpath = str(ws.path)
    ws.close()
    app = Forms()
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        for path, name, bad in CASES:
            opts = DECLARED[path]
            fill = {k: v for k, v in _fill(path, opts).items() if k != name}
            with contextlib.redirect_stderr(io.StringIO()) as stderr:  # the app under test holds sys.stderr
                rc = main([*path, *EXTRA.get(path, []), *_argv(opts, {**fill, name: bad}), "-w", wpath])
            err = stderr.getvalue().strip()
            assert rc == 1 and err.startswith("error: "), (path, name, bad, err)
            message = err.removeprefix("error: ")
            assert message.startswith(f"{opts[name].label} ({opts[name].cli_name}): "), message
            form = app.form(path)
            for k, v in fill.items():
                _set(form, k, v)
            form.set_value(name, bad)
            await pilot.pause()
            shown = str(form.query_one(f"#{form.field_id(name)}-error", Static).render())
            assert shown == message, (path, name, bad)
            with pytest.raises(UserError) as exc:
                form.values()
            assert str(exc.value) == message
            form.set_value(name, opts[name].to_text(opts[name].default))
            await pilot.pause()


def _literals(path: Path) -> list[str]:
    """Numbers and string contents of a Python file (comments left out)."""
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
        if tok.type in (tokenize.NUMBER, tokenize.STRING):
            out.append(tok.string)
    return out


def _where(literal: str, files: list[Path]) -> list[str]:
    pattern = re.compile(rf"(?<![\w.]){re.escape(literal)}(?![\w.])")
    return [str(f.relative_to(ROOT)) for f in files for text in _literals(f) if pattern.search(text)]


SOURCE = sorted(p for d in ("curation", "train", "studio", "distill", "bench") for p in (ROOT / d).rglob("*.py"))


def test_the_dedupe_threshold_is_written_once() -> None:
    assert _where("0.85", SOURCE) == ["curation/dedupe.py"]


def test_the_upsampling_cap_is_written_once() -> None:
    near = [ROOT / f for f in ("curation/rebalance.py", "curation/oversample.py", "distill/commands/rebalance.py",
                               "distill/commands/oversample.py", "studio/screens/curation_ops.py")]  # fmt: skip
    everywhere = [*near, *sorted((ROOT / "distill/commands").glob("*.py")), *(ROOT / "studio").rglob("*.py")]
    assert _where("5.0", everywhere) + _where("5", near) == ["curation/rebalance.py"]


@pytest.mark.parametrize("name", ["max_steps", "learning_rate", "max_length"])  # the distinctive ones
def test_training_defaults_are_written_once(name: str) -> None:
    default = TRAIN.default(name)
    texts = {f"{default:g}", repr(default)} | ({"2e-3"} if name == "learning_rate" else set())
    front = [ROOT / "distill/commands/train.py", ROOT / "studio/screens/training.py"]
    assert not [w for t in texts for w in _where(t, front)]
    assert len([w for t in texts for w in _where(t, [ROOT / "train/config.py"])]) == 1
