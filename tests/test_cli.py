"""The pgm-energy command line, end to end."""
import numpy as np
import pytest

import pgm_energy as pe
from pgm_energy.cli import bars_and_stripes, main


def test_bars_and_stripes_counts():
    for side in (2, 3, 4):
        data = bars_and_stripes(side)
        assert len(data) == 2 ** (side + 1) - 2
        assert len(np.unique(data, axis=0)) == len(data)
        images = data.reshape(-1, side, side)
        assert all((img == img[:1]).all() or (img == img[:, :1]).all() for img in images)


def test_demo_small_budget(capsys, tmp_path):
    assert main(["demo", "--side", "3", "--hidden", "6", "--epochs", "3",
                 "--out", str(tmp_path / "figs")]) == 0
    out = capsys.readouterr().out
    assert "optimum -log 14" in out and "exact log Z" in out and "AIS estimate" in out
    for name in ("filters.png", "samples.png", "training.png"):
        assert (tmp_path / "figs" / name).stat().st_size > 0


@pytest.mark.parametrize("hidden", [pe.Binary(4), pe.Categorical(2, 3)])
def test_verify_a_saved_model(capsys, tmp_path, hidden):
    model = pe.EnergyModel({"x": pe.Binary(6), "h": hidden},
                           [pe.Bias("x"), pe.Bias("h", name="c"), pe.Pairwise("h", "x")],
                           visible=["x"])
    model.params["W"][...] = np.random.default_rng(0).normal(size=model.params["W"].shape)
    path = tmp_path / "rbm.npz"
    model.save(path)
    assert main(["verify", str(path), "--n-betas", "300", "--n-runs", "50"]) == 0
    out = capsys.readouterr().out
    assert out.count("[PASS]") == 3 and "[FAIL]" not in out


@pytest.mark.parametrize("argv", [[], ["demo", "--epochs", "0"], ["demo", "--side", "9"],
                                  ["verify"], ["nonsense"], ["verify", "x.npz", "--n-runs", "0"]])
def test_bad_arguments_exit_with_code_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_verify_missing_or_bad_file(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "missing.npz")]) == 2
    np.savez(tmp_path / "junk.npz", a=np.zeros(2))
    assert main(["verify", str(tmp_path / "junk.npz")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_help_everywhere(capsys):
    for argv in (["--help"], ["demo", "--help"], ["verify", "--help"], ["bench", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_bench_without_benchmarks_folder(tmp_path, capsys):
    assert main(["bench", "--dir", str(tmp_path)]) == 2
    assert "no benchmarks" in capsys.readouterr().err
