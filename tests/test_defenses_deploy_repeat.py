"""Keyed copies through the deployment path (issue 19, session 20): ``deploy("keyed-spread", ...,
keyed_repeat=r)`` and ``semguard attack --defense keyed-spread --keyed-repeat r``.  ``r = 1`` is the
deployment as before, bit for bit; ``r = 2`` doubles the defended block's channel uses; the adaptive
attacks (key-EOT PGD, guessed-key replay, correlated jammer) run through the repeated link; bad values
and ``--keyed-repeat`` with another defence are one-line errors; the JSON records the copies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from semguard.channels import AWGN
from semguard.cli.attack import KEYED_REPEAT_MAX
from semguard.cli.main import main
from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.defenses.deploy import adaptive_attacks, deploy, keyed_pilots, session_key
from semguard.defenses.keyed_attacks import GuessedKeyLink
from semguard.defenses.keyed_spread import MAX_REPEAT, KeyedSpreadDefense
from semguard.link import Link
from semguard.registry import build


@pytest.fixture(scope="module")
def task():
    torch.set_num_threads(1)
    x, y = shipped_fashion_mnist(48)
    return Link(pretrained("task-fmnist"), AWGN()), x[:16], y[:16], x[32:]


def _send(link: Link, x: torch.Tensor, **kw) -> dict:
    with torch.no_grad():
        return link(x, 10.0, generator=torch.Generator().manual_seed(4), **kw)


def test_repeat_1_is_the_old_deployment_bit_for_bit(task):
    link, x, _, refs = task
    dep = deploy("keyed-spread", link, refs, 10.0, seed=3)
    default = deploy("keyed-spread", link, refs, 10.0, seed=3, keyed_repeat=1)
    # the deployment as it was built before keyed_repeat: the defence with its key and pilots, repeat unset
    old = KeyedSpreadDefense(key=session_key(3), pilots=keyed_pilots(16)).wrap(link)
    a, b, c = _send(dep.deployed, x), _send(default.deployed, x), _send(old, x)
    assert torch.equal(a["output"], c["output"]) and torch.equal(b["output"], c["output"])
    assert torch.equal(a["transmitted"], c["transmitted"])
    assert repr(dep.defense) == repr(KeyedSpreadDefense(key=session_key(3), pilots=16))  # no ", repeat=" shown
    assert dep.config == {"pilots": 16, "pilot_overhead": 1.0, "keys_per_step": 8, "repeat": 1,
                          "channel_uses": 32, "undefended_channel_uses": 16}


def test_repeat_2_doubles_the_defended_block_and_the_attacks_use_it(task):
    link, x, y, refs = task
    one = deploy("keyed-spread", link, refs, 10.0)
    two = deploy("keyed-spread", link, refs, 10.0, keyed_repeat=2)
    n1, n2 = one.deployed.n_symbols((1, 28, 28)), two.deployed.n_symbols((1, 28, 28))
    assert n2 == 2 * n1 == 2 * (16 + 16) and two.defense.repeat == 2 and two.defense.pilots == 16
    assert two.config["repeat"] == 2 and two.config["channel_uses"] == n2 == 64
    assert _send(two.deployed, x)["transmitted"].shape == (16, 64)
    # the clean link decodes (the copies combined): accuracy as high as one copy's
    acc = [float((_send(d.deployed, x)["output"].argmax(1) == y).float().mean()) for d in (one, two)]
    assert acc[1] >= acc[0] - 0.07
    # the adaptive attacks know the defence: they are crafted through the repeated link
    base = build("attack", "pgd", surface="channel", psr_db=-10.0, steps=1)
    labels = dict(adaptive_attacks(two, base))
    assert list(labels) == ["key-eot", "correlated"]
    for lab, atk in labels.items():
        r = atk(two.deployed, x, 10.0, labels=y, generator=torch.Generator().manual_seed(0))
        assert r.link["interference"].shape == (16, 64), lab
    guessed = GuessedKeyLink(two.deployed, torch.Generator().manual_seed(1))
    assert guessed.codec.repeat == 2 and guessed.n_symbols((1, 28, 28)) == 64
    uni = build("attack", "fgsm", surface="channel", psr_db=-10.0)
    (lab, replayed), (jam, _) = adaptive_attacks(two, uni)
    assert (lab, jam) == ("guessed-key", "correlated") and replayed.on.codec.repeat == 2
    r = replayed(two.deployed, x, 10.0, labels=y, generator=torch.Generator().manual_seed(0))
    assert r.link["interference"].shape == (16, 64)


@pytest.mark.parametrize("bad", [0, 17, 1.5, True, "2"])
def test_deploy_refuses_bad_copies_in_one_line(task, bad):
    link, _, _, refs = task
    with pytest.raises(ValueError) as e:
        deploy("keyed-spread", link, refs, 10.0, keyed_repeat=bad)
    assert len(str(e.value).splitlines()) == 1 and str(e.value).startswith("keyed_repeat: repeat must be")


def test_deploy_refuses_copies_with_another_defence(task):
    link, _, _, refs = task
    with pytest.raises(ValueError, match="^keyed_repeat: copies of the block are a keyed-spread option"):
        deploy("blanking", link, refs, 10.0, keyed_repeat=2)
    deploy("blanking", link, refs, 10.0, keyed_repeat=1)  # the default is no option


def test_cli_bound_is_the_defence_bound():
    assert KEYED_REPEAT_MAX == MAX_REPEAT


_BASE = ["attack", "--codec", "task-fmnist", "--attack", "pgd", "--psr-db", "-10", "--images", "8", "--steps", "1",
         "--threads", "1"]


@pytest.mark.parametrize("flags, words", [
    (["--defense", "keyed-spread", "--keyed-repeat", "0"], "argument --keyed-repeat: expected a whole number from 1 to 16, got '0'"),
    (["--defense", "keyed-spread", "--keyed-repeat", "17"], "expected a whole number from 1 to 16, got '17'"),
    (["--defense", "keyed-spread", "--keyed-repeat", "two"], "expected a whole number from 1 to 16, got 'two'"),
    (["--defense", "blur", "--keyed-repeat", "2"], "--keyed-repeat: copies of the keyed block go with --defense keyed-spread, not --defense blur"),
    (["--keyed-repeat", "2"], "go with --defense keyed-spread, not no --defense"),
])
def test_cli_refuses_bad_keyed_repeat_in_one_line(tmp_path, capsys, flags, words):
    try:
        rc = main([*_BASE, "--out", str(tmp_path / "out"), *flags])
    except SystemExit as e:  # argparse's refusal (the one-line SemguardParser error)
        rc = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and words in err[0] and err[0].startswith("semguard attack: error:"), err
    assert not (tmp_path / "out" / "records.jsonl").exists()


def test_cli_keyed_repeat_2_records_the_copies(tmp_path: Path):
    out = tmp_path / "out"
    assert main([*_BASE, "--defense", "keyed-spread", "--keyed-repeat", "2", "--out", str(out)]) == 0
    doc = json.loads((out / "attack.json").read_text())
    assert doc["config"]["keyed_repeat"] == 2
    recs = doc["records"]
    assert [(r["mode"], r["adaptive_attack"]) for r in recs] == [
        ("undefended", None), ("non-adaptive", "crafted-undefended"), ("adaptive", "key-eot"),
        ("adaptive", "correlated")]
    for r in recs[1:]:
        assert r["defense"] == "keyed-spread" and r["defense_config"]["repeat"] == 2
        assert r["defense_config"]["channel_uses"] == 64 and r["defense_config"]["undefended_channel_uses"] == 16
    # the same folder with one copy does not resume the two-copy records: it runs its own
    assert main([*_BASE, "--defense", "keyed-spread", "--out", str(out)]) == 0
    recs1 = json.loads((out / "attack.json").read_text())["records"]
    assert [r["defense_config"]["repeat"] for r in recs1[1:]] == [1, 1, 1]
