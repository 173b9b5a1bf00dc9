"""Scenario files: the bundled default loads, --quick shrinks what it says, and every malformed
file gets one line that names the file, the key and what was expected."""

from __future__ import annotations

import pytest

from semguard.evaluation.scenario import ScenarioError, list_scenarios, load_scenario


def test_the_bundled_default_loads_and_quick_shrinks_it() -> None:
    assert "default" in list_scenarios()
    s = load_scenario("default")
    assert s.run.image_codec == "switched-cbr1_6" and s.secrecy is not None and s.constraints
    q = s.quick()
    assert q.run.snr_db == (0.0, 10.0) and q.run.images == 2 and q.run.fading_realizations == 1
    assert q.run.reference_codecs == ("adjscc-cbr1_6",) and len(s.run.reference_codecs) == 3
    assert q.run.task_images == 500 and q.run.text_sentences == 50 and q.quick() is q
    r, qr = s.robustness, q.robustness
    assert r is not None and qr is not None and r.attacks == ("gaussian", "pgd") and r.text_attacks == ("pgd",)
    assert (r.steps, r.images, r.text_sentences) == (10, 2, 64)
    assert (qr.steps, qr.images, qr.text_sentences) == (5, 1, 16) and qr.psr_db == r.psr_db == (-20.0, -10.0)


@pytest.mark.parametrize("body, message", [
    ("[channels]\nsnr_db = ['ten']\n", r"\[channels\] snr_db: expected a list of finite numbers, got \['ten'\]"),
    ("[channels]\nnames = ['awgnn']\n", r"\[channels\] names: expected one of .*awgn.*, got 'awgnn'"),
    ("[images]\ncodec = 'nosuch'\n", r"\[images\] codec: expected one of .*, got 'nosuch'"),
    ("[images]\nfading_draws = 0\n", r"\[images\] fading_draws: expected an integer >= 1, got 0"),
    ("[images]\nlink_baseline = 'webp_ldpc'\nbaselines = ['jpeg_capacity']\n", r"\[images\] link_baseline"),
    ("[channels]\nsnr_db = [10, 10]\n", r"\[channels\] snr_db: expected a non-empty list of distinct SNRs"),
    ("[task]\nimages = 5000\n", r"\[task\] images: expected an integer in 1..2000"),
    ("[energy]\ndevice_class = 'toaster'\n", r"\[energy\] device_class: expected one of"),
    ("[constraints.x]\nmetric = 'psnr'\n", r"\[constraints.x\] min: expected exactly one of min or max"),
    ("[oops]\n", r"\[oops\]: expected one of the sections"),
    ("[images]\ncolour = 1\n", r"\[images\] colour: expected no such key"),
    ("[channels\n", r"not a valid TOML file"),
    ("[quick]\nimages = -1\n", r"\[quick\] images: expected an integer >= 1"),
    ("[quick]\nrobustness_steps = 2\n", r"\[quick\] robustness_steps: expected no robustness override without"),
    ("[quick]\nreference_codecs = ['nosuch']\n", r"\[quick\] reference_codecs: expected one of .*, got 'nosuch'"),
    ("[robustness]\ntext_attacks = ['pgd']\n[text]\ncodec = ''\n",
     r"\[robustness\] text_attacks: expected none without a text codec"),
    ("[robustness]\ndefenses = ['blanking']\nchannel = 'rayleigh'\n",
     r"\[robustness\] defenses: expected no defences unless channel = \"awgn\""),
    ("[robustness]\ndefenses = ['smoothing']\n", r"\[robustness\] defenses: expected one of blanking, blur, interference-lmmse, keyed-spread, got 'smoothing'"),
])
def test_malformed_scenarios_name_file_and_key(tmp_path, body: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ScenarioError, match=message) as err:
        load_scenario(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(str(path))
    assert path.read_text() == body                                           # reading never writes


def test_missing_and_unknown_scenarios(tmp_path) -> None:
    with pytest.raises(ScenarioError, match="no bundled scenario named 'nosuch'"):
        load_scenario("nosuch")
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "absent.toml")
    with pytest.raises(ScenarioError, match="is a folder"):
        load_scenario(tmp_path)
