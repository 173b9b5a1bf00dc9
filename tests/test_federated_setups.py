"""Per-codec setups of a federation: one per codec the CLI takes, a one-line error for any other."""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import fields

import pytest
import torch

from semguard.cli.main import build_parser
from semguard.data.text import WORDNET_ROOT
from semguard.federated.client import LocalConfig
from semguard.federated.engine import FL_CODECS, METRICS, Federation, FLConfig, evaluate
from semguard.federated.setups import SETUPS, CodecSetup, codec_setup

torch.set_num_threads(1)
TINY = {
    "task": dict(clients=3, width=4, test_size=40, root_size=10),
    "deepjscc": dict(codec="deepjscc", clients=3, width=4, crop=16, train_crops=12, test_size=8, root_size=5),
    "deepsc": dict(codec="deepsc", clients=2, width=8, train_sentences=40, test_size=10, root_size=5),
}
needs_wordnet = pytest.mark.skipif(not (WORDNET_ROOT / "data.noun").is_file(), reason="Debian wordnet-base missing")


def _fl_parser() -> argparse.ArgumentParser:
    (sub,) = [a for a in build_parser("fl")._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices["fl"]


def _cli_codecs() -> list[str]:
    (action,) = [a for a in _fl_parser()._actions if "--codec" in a.option_strings]
    return list(action.choices)


def test_codec_only_flags_default_to_the_config_and_belong_to_one_codec():
    cli = {a.dest: a.default for a in _fl_parser()._actions}
    cfg = {f.name: f.default for f in fields(FLConfig)}
    options = [o for s in SETUPS.values() for o in s.options]
    assert len(options) == len(set(options)) and {"n_symbols", "cbr", "layers"} <= set(options)
    for o in options:  # the CLI refuses a flag off its default with another codec: the defaults must agree
        assert cli[o] == cfg[o], o


def test_every_codec_the_cli_takes_has_its_own_setup():
    names = _cli_codecs()
    assert sorted(names) == sorted(SETUPS) == sorted(FL_CODECS) == sorted(TINY)
    assert len({id(s) for s in SETUPS.values()}) == len({type(s) for s in SETUPS.values()}) == len(names)
    for name in names:
        setup = codec_setup(name)
        assert setup.name == name and METRICS[name] == setup.metrics and setup.metrics
        for method in ("data", "codec", "evaluate"):  # nothing falls back to the base's NotImplementedError
            assert getattr(type(setup), method) is not getattr(CodecSetup, method), (name, method)
    assert [s.reconstruct for s in SETUPS.values()] == [n != "task" for n in SETUPS]


@pytest.mark.parametrize("bad", ["gpt", "", "Task", "deep sc"])
def test_unknown_codec_gets_one_line_error(bad):
    for call in (lambda: codec_setup(bad), lambda: FLConfig(codec=bad)):
        with pytest.raises(ValueError) as exc:
            call()
        msg = str(exc.value)
        assert "\n" not in msg and msg.startswith(f"--codec {bad!r} unknown") and "task, deepjscc, deepsc" in msg


@pytest.mark.parametrize("name", [n for n in TINY if n != "deepsc"] + [
    pytest.param("deepsc", marks=needs_wordnet)])
def test_each_setup_builds_a_federation_scored_by_its_metrics(name):
    fed = Federation(FLConfig(**TINY[name], local=LocalConfig(steps=1, batch=4)))
    assert fed.setup is SETUPS[name] and fed.codec.config.get("federated_codec", "task") == name
    x, y = fed.client_data(0)
    assert torch.equal(x, y) == SETUPS[name].reconstruct  # reconstruction codecs: an example is its own target
    assert sum(len(p) for p in fed.parts) == len(torch.cat(fed.parts).unique())  # clients share nothing
    got = evaluate(fed, fed.initial)
    assert set(got) == set(METRICS[name]) and all(torch.isfinite(torch.tensor(v)) for v in got.values())
    assert evaluate(fed, fed.initial) == got  # the same channel draws every time


def test_engine_import_leaves_the_codec_data_modules_unloaded():
    code = ("import sys, semguard.federated.engine as e; e.FLConfig(); "
            "print(' '.join(m for m in ('semguard.federated.image', 'semguard.federated.text') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
