"""bench/attacks_tables.py's comparison with issue 18's calibration anchor: drops from clean, by hand."""

from __future__ import annotations

from bench_module import load_bench


def _rec(attack: str, budget: float, attacked: float, clean: float = 30.0) -> dict:
    return {"codec": "c", "attack": attack, "budget": budget, "clean": clean, "attacked": attacked}


def test_anchor_rows_compare_drops_from_clean_not_psnr() -> None:
    bench = load_bench("attacks_tables")
    # anchor PGD at -10 dB: 28.9 -> 15.4, a 13.5 dB drop; ours 30.0 -> 16.0 is a 14.0 dB drop: stronger,
    # though its PSNR is above the anchor's.  Universal at -10 dB: 30.0 -> 18.0 (12.0) equals the anchor's
    # 28.9 -> 16.9 (12.0); at -20 dB: 30.0 -> 28.0 (2.0) is weaker than 28.9 -> 26.0 (2.9)
    rows = bench.anchor_rows([_rec("pgd", -10.0, 16.0), _rec("universal", -10.0, 18.0),
                              _rec("universal", -20.0, 28.0), _rec("transfer", -10.0, 1.0)])
    body = [r.split(" | ") for r in rows[2:]]
    assert [(c[1], c[2], c[4], c[6], c[7]) for c in body] == [
        ("pgd", "-10", "14.00", "13.5", "yes |"), ("universal", "-20", "2.00", "2.9", "no |"),
        ("universal", "-10", "12.00", "12.0", "yes |")]


def test_anchor_rows_skip_cells_the_run_does_not_have() -> None:
    assert len(load_bench("attacks_tables").anchor_rows([_rec("gaussian", -5.0, 29.0)])) == 2  # the header only
