"""Every registered defence through ``semguard attack --defense`` (defenses/deploy.py): it either runs on a
codec of each family, undefended, non-adaptive and adaptive, or is refused with one line; the replay of a
perturbation is exact; the adaptive attack beats the non-adaptive one where the defence masks gradients."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from semguard.channels import AWGN
from semguard.cli.attack import run_grid
from semguard.cli.main import main
from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.defenses.deploy import (
    LINK_DEFENSES,
    NOT_LINK_DEFENSES,
    DefenseNotApplicable,
    adaptive_attacks,
    deploy,
    keyed_pilots,
    non_adaptive,
    replay,
)
from semguard.link import Link
from semguard.registry import available, build


def test_every_registered_defense_is_wired_or_refused_by_name():
    # a defence added to the registry must be deployed here or say why not (this test fails until it does)
    assert set(available("defense")) == set(LINK_DEFENSES) | set(NOT_LINK_DEFENSES)


def _cfg(codec: str, defense: str, channel: str) -> dict:
    return {"codec": codec, "attack": ["pgd"], "psr_db": [-10.0], "eps": None, "channel": channel, "snr_db": 10.0,
            "images": 1, "steps": 1, "seed": 0, "defense": defense, "side": 32, "targeted": False}


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["softcast-cbr1_6", "task-fmnist", "deepsc"])
def test_each_defense_applies_to_each_family_or_is_refused_in_one_line(tmp_path, codec):
    applied = set()
    for channel in ("awgn", "rayleigh"):
        for d in available("defense"):
            try:
                recs = run_grid(_cfg(codec, d, channel), tmp_path / f"{channel}-{d}", progress=False)
            except DefenseNotApplicable as e:
                msg = str(e)
                assert len(msg.splitlines()) == 1 and msg.startswith(f"--defense {d} does not apply to ")
                continue
            applied.add(d)
            modes = [r["mode"] for r in recs]
            assert modes[0] == "undefended" and "non-adaptive" in modes and "adaptive" in modes
            for r in recs:
                assert r["threat_model"]["budget"] == -10.0 and (r["defense"] is None) == (r["mode"] == "undefended")
    # keyed spreading and the interference-aware receiver apply to every family; pilot-check over Rayleigh
    assert {"keyed-spread", "interference-lmmse", "blanking", "pilot-check"} <= applied
    assert ("blur" in applied) == (codec != "deepsc")


def test_refusals_are_one_line_from_the_command(tmp_path, capsys):
    for flags, msg in ((["--codec", "deepsc", "--defense", "blur"], "--defense blur does not apply to deepsc: "),
                       (["--defense", "residual-detector"], "a detector raises alarms"),
                       (["--defense", "blanking", "--channel", "rayleigh"], "use --channel awgn"),
                       (["--defense", "nope"], "--defense 'nope': choose from blur, blanking")):
        rc = main(["attack", "--codec", "softcast-cbr1_6", "--images", "1", "--steps", "1", "--psr-db", "-10",
                   "--out", str(tmp_path), *flags])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and msg in err[0] and err[0].startswith("semguard attack: error:"), err


@pytest.fixture(scope="module")
def task():
    torch.set_num_threads(1)
    x, y = shipped_fashion_mnist(48)
    return Link(pretrained("task-fmnist"), AWGN()), x[:32], y[:32], x[32:]


@pytest.mark.parametrize("surface, kw", [("input", {"eps": 0.1}), ("channel", {"psr_db": -10.0})])
def test_replay_through_the_same_link_reproduces_the_attacked_output(task, surface, kw):
    link, x, y, _ = task
    r = build("attack", "pgd", surface=surface, steps=2, **kw)(link, x[:8], 10.0, labels=y[:8],
                                                                generator=torch.Generator().manual_seed(3))
    out = replay(link, x[:8], 10.0, r, torch.Generator().manual_seed(3))
    assert torch.allclose(out["output"], r.output, atol=1e-5)


def test_blur_adaptive_attack_beats_the_non_adaptive_one(task):
    # the 8-bit quantiser has zero gradient, so only BPDA (+ EOT over the random kernel) finds the
    # perturbation; the one crafted on the undefended codec is partly blurred away (cf. test_defenses_blur)
    link, x, y, refs = task
    dep = deploy("blur", link, refs, 10.0, label="task-fmnist")
    base = build("attack", "pgd", surface="input", eps=0.1, steps=10)
    [(label, adaptive)] = adaptive_attacks(dep, base)
    assert label == "bpda+eot" and adaptive.inner.eot == 4

    def acc(atk) -> float:
        r = atk(dep.deployed, x, 10.0, labels=y, generator=torch.Generator().manual_seed(0))
        return float((r.output.argmax(1) == y).float().mean())

    assert acc(adaptive) < acc(non_adaptive(dep, base)) - 0.2


def test_keyed_spread_adaptive_attacks_know_the_defence_not_the_key(task):
    link, _, _, refs = task
    dep = deploy("keyed-spread", link, refs, 10.0)
    base = build("attack", "pgd", surface="channel", psr_db=-10.0, steps=3)
    labels = [lab for lab, _ in adaptive_attacks(dep, base)]
    assert labels == ["key-eot", "correlated"]
    assert dep.defense.pilots == keyed_pilots(16) == 16  # the task codec's 16 symbols: 16 pilots, not 512
    assert keyed_pilots(32768) == 512 and keyed_pilots(2048) == 128
    eot = adaptive_attacks(dep, base)[0][1]
    assert eot.keys == 8 and eot.steps == 3 and eot.budget == -10.0
    assert "key=<secret>" in repr(dep.defense) and "key" not in json.dumps(dep.config).replace("keys_per_step", "")
    assert [lab for lab, _ in adaptive_attacks(dep, build("attack", "gaussian", surface="channel", psr_db=-10.0))] == ["as-is"]


def test_attack_command_records_both_modes(tmp_path: Path):
    args = ["attack", "--codec", "task-fmnist", "--attack", "pgd", "--eps", "0.1", "--images", "8", "--steps", "3",
            "--defense", "blur", "--out", str(tmp_path), "--threads", "1"]
    assert main(args) == 0
    recs = json.loads((tmp_path / "attack.json").read_text())["records"]
    assert [(r["mode"], r["adaptive_attack"]) for r in recs] == [
        ("undefended", None), ("non-adaptive", "crafted-undefended"), ("adaptive", "bpda+eot")]
    assert recs[1]["config"]["crafted_on"].startswith("undefended") and recs[2]["config"]["eot"] == 4
    assert recs[1]["defense_config"]["quantize"] is True  # (clean differs: the blur draws its width per call)
    assert recs[2]["attacked"] < recs[1]["attacked"]
    for r in recs:
        assert r["threat_model"]["surface"] == "input" and r["measured_budget"] <= 0.1 + 1e-6
    assert main(args) == 0  # resumes every mode
