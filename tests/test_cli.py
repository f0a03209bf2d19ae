"""The pgm-energy command line, end to end."""
import os
import subprocess
import sys
from pathlib import Path

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


# -- version, demo --save, verify --import ------------------------------------------------------
def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"pgm-energy {pe.__version__}"


def test_demo_save_keeps_the_model(capsys, tmp_path):
    assert main(["demo", "--side", "2", "--hidden", "3", "--epochs", "2", "--out", "",
                 "--save", str(tmp_path / "trained")]) == 0
    assert f"model saved to {tmp_path / 'trained.npz'}" in capsys.readouterr().out
    model = pe.load(tmp_path / "trained")
    assert model.params["W"].shape == (3, 4) and np.any(model.params["W"] != 0)


def test_demo_saves_into_the_figures_folder_it_makes(tmp_path):
    out = tmp_path / "new"
    assert main(["demo", "--side", "2", "--hidden", "3", "--epochs", "2", "--out", str(out),
                 "--save", str(out / "trained")]) == 0
    assert pe.load(out / "trained").params["W"].shape == (3, 4)


USER_MODULE = '''
import numpy as np
import pgm_energy as pe


class CountPenalty(pe.Term):
    """E = theta * (sum_i x_i - k)^2."""

    def __init__(self, group, k, theta=0.0, name="theta"):
        super().__init__(groups=(group,), params={name: np.array(theta, dtype=float)})
        self.k = k

    def energy(self, state):
        return self.params[self.param_names[0]] * (state[self.groups[0]].sum(1) - self.k) ** 2

    def energy_grad(self, state):
        return {self.param_names[0]: (state[self.groups[0]].sum(1) - self.k) ** 2.0}


def build():
    model = pe.EnergyModel({"x": 5, "h": 2}, [pe.Bias("x"), pe.Pairwise("h", "x"),
                                               CountPenalty("x", k=2, theta=0.3)],
                           visible=["x"])
    model.params["W"][...] = np.random.default_rng(0).normal(size=(2, 5))
    return model
'''


def run_cli(args, cwd, timeout=300):
    """``python -m pgm_energy.cli ARGS`` in a fresh interpreter (the package under test)."""
    root = str(Path(pe.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "pgm_energy.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_verify_imports_the_users_module(tmp_path, monkeypatch):
    (tmp_path / "user_terms_mod.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "user_terms_mod", raising=False)
    import user_terms_mod

    user_terms_mod.build().save(tmp_path / "user.npz")
    without = run_cli(["verify", "user.npz"], tmp_path)
    assert without.returncode == 2 and "Traceback" not in without.stderr
    assert "unknown term class 'user_terms_mod.CountPenalty'" in without.stderr
    assert "--import" in without.stderr
    run = run_cli(["verify", "user.npz", "--import", "user_terms_mod", "--n-betas", "300",
                   "--n-runs", "50"], tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "CountPenalty" in run.stdout and run.stdout.count("[PASS]") == 3
    missing = run_cli(["verify", "user.npz", "--import", "no_such_module_here"], tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines() == [
        "pgm-energy verify: cannot import no_such_module_here: ModuleNotFoundError: No module "
        "named 'no_such_module_here'"]


# -- errors: one line, status 2, no traceback (issue 19) ----------------------------------------
def bad_file(kind, tmp_path):
    path = tmp_path / ("model.npy" if kind == "npy" else "model.npz")
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        pe.RBM(4, 2).save(path)
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "npy":
        np.save(path, np.zeros(4))
    elif kind == "nan":
        model = pe.RBM(4, 2)
        model.params["W"][0, 1] = np.nan
        model.save(path)
    return path


@pytest.mark.parametrize("kind, message", [
    ("empty", "not a pgm_energy model"), ("truncated", "not a pgm_energy model"),
    ("npy", "not a pgm_energy model"), ("nan", "'W' of Pairwise has NaN")])
def test_verify_bad_files_one_line_status_2(tmp_path, capsys, kind, message):
    assert main(["verify", str(bad_file(kind, tmp_path))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pgm-energy verify: cannot ") and message in err[0]


def test_verify_refuses_an_ais_budget_of_hours(tmp_path):
    pe.RBM(4, 2).save(tmp_path / "m.npz")
    run = run_cli(["verify", "m.npz", "--n-betas", "1000000000"], tmp_path, timeout=120)
    err = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(err) == 1
    assert "--n-betas 1000000000" in err[0] and "lower them" in err[0]


def test_verify_a_chain_too_large_to_enumerate(tmp_path):
    n = 3000
    pe.Ising([(i, i + 1) for i in range(n - 1)], np.full(n - 1, 0.5),
             np.full(n, 0.1)).save(tmp_path / "chain.npz")
    run = run_cli(["verify", "chain.npz", "--n-betas", "100", "--n-runs", "10"], tmp_path)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert "3000 units" in run.stdout and "AIS log Z" in run.stdout


@pytest.mark.parametrize("argv, message", [
    (["--lr", "inf"], "--lr must be a finite number > 0, got inf"),
    (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
    (["--seed", "-1"], "argument --seed: must be >= 0, got -1"),
    (["--out", "EXISTING"], "is a file; the figures need a folder"),
    (["--save", "NO_FOLDER/model"], "its folder does not exist"),
])
def test_demo_bad_arguments_before_training(tmp_path, capsys, argv, message):
    (tmp_path / "existing.txt").write_text("keep me")
    argv = [a.replace("EXISTING", str(tmp_path / "existing.txt"))
             .replace("NO_FOLDER", str(tmp_path / "no" / "folder")) for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--epochs", "1", *argv])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""                  # refused before any training
    assert captured.err.strip().splitlines()[-1].endswith(message)
    assert (tmp_path / "existing.txt").read_text() == "keep me"


# -- benchmarks run against the installed package -------------------------------------------------
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_no_benchmark_puts_the_source_tree_on_the_path():
    scripts = sorted(BENCHMARKS.glob("*.py"))
    assert scripts
    for script in scripts:
        assert "sys.path.insert" not in script.read_text(), script.name


def test_a_benchmark_measures_the_installed_package(tmp_path):
    """``bench_terms.py --quick`` from another folder, with pgm_energy 'installed' in a
    site folder of its own: the script reports and measures that copy."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "pgm_energy").symlink_to(Path(pe.__file__).resolve().parent)
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, str(BENCHMARKS / "bench_terms.py"), "--quick"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert f"pgm_energy {pe.__version__} from {site / 'pgm_energy'}" in run.stdout
    assert "generic/compiled" in run.stdout


def test_bench_command_runs_the_scripts_on_its_own_package(tmp_path, capfd):
    (tmp_path / "bench_where.py").write_text(
        "import sys\nimport pgm_energy\nprint('measured', pgm_energy.__file__, sys.argv[1:])\n")
    assert main(["bench", "--dir", str(tmp_path)]) == 0
    out = capfd.readouterr().out
    assert f"measured {pe.__file__} ['--quick']" in out
