"""``distill CMD`` registers only CMD's module (``distill.commands.MODULE_OF``): the table must name, for every
command the full parser has, the module whose ``register`` adds it, and the one-module parser must parse alike."""

from __future__ import annotations

import argparse
import importlib
import pkgutil

from distill import commands
from distill.cli import build_parser, common_parser


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_module_of_names_the_module_that_registers_each_command() -> None:
    found: dict[str, str] = {}
    for info in pkgutil.iter_modules(commands.__path__):
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(f"distill.commands.{info.name}").register(sub, common_parser())
        found.update(dict.fromkeys(sub.choices, info.name))
    assert found == commands.MODULE_OF
    assert _commands(build_parser()) == set(commands.MODULE_OF)


def test_one_module_parser_parses_like_the_full_one() -> None:
    argv = ["teachers", "add", "t", "--base-url", "http://x/v1", "--model", "m", "--no-key", "-w", "w.duckdb"]
    one = build_parser(only="teachers")
    assert _commands(one) == {"teachers", "generate", "synth", "batch"}
    assert vars(one.parse_args(argv)) == vars(build_parser().parse_args(argv))
