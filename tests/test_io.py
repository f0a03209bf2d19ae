"""Saving and loading models: exact round trips, numpy's file-name rule, and a ValueError
saying "not a pgm_energy model" for every damaged or foreign file (never code execution)."""
import json
import pickle

import numpy as np
import pytest

import pgm_energy as pe


class Shifted(pe.Term):
    """E = -theta * sum_i x_i with constructor arguments of every JSON-ish kind (tuples)."""

    def __init__(self, group, shape=(2, 3), spec=None, theta=0.0, name="theta"):
        super().__init__(groups=(group,), params={name: np.array(theta)})
        self.shape, self.spec = shape, spec

    def config(self):
        return {"group": self.groups[0], "shape": self.shape, "spec": self.spec,
                "name": self.param_names[0]}

    def energy(self, state):
        return -self.params[self.param_names[0]] * state[self.groups[0]].sum(axis=1)

    def energy_grad(self, state):
        return {self.param_names[0]: -state[self.groups[0]].sum(axis=1)}


class Plain(Shifted):
    """The same term without config(): saved through its attributes."""

    def config(self):
        raise NotImplementedError


SPEC = {"pairs": [(0, 1), (1, (2, 3))], "empty": (), "one": (1.5,), "text": "a",
        "tricky": {"__tuple__": [1, 2]}, "also": {"__dict__": (None, True)}, "n": np.int64(4)}


def model_with(term):
    return pe.EnergyModel({"x": 3, "h": 2}, [pe.Bias("x"), pe.Pairwise("h", "x"), term],
                          visible=["x"])


@pytest.mark.parametrize("cls", [Shifted, Plain])
def test_tuples_round_trip(tmp_path, cls):
    model = model_with(cls("x", shape=(4, (5, 6)), spec=SPEC, theta=0.25))
    model.save(tmp_path / "m.npz")
    term = pe.load(tmp_path / "m.npz").terms[-1]
    assert type(term) is cls
    assert term.shape == (4, (5, 6)) and type(term.shape) is tuple
    assert term.spec == SPEC
    assert type(term.spec["pairs"][1][1]) is tuple and type(term.spec["pairs"]) is list
    assert term.spec["tricky"] == {"__tuple__": [1, 2]} and type(term.spec["also"]) is dict
    assert term.params["theta"] == 0.25


def test_values_json_cannot_hold_are_refused_clearly(tmp_path):
    with pytest.raises(TypeError, match="Plain attributes 'spec'.*set"):
        model_with(Plain("x", spec={1, 2})).save(tmp_path / "m.npz")
    with pytest.raises(TypeError, match="dict keys must be str"):
        model_with(Shifted("x", spec={1: 2})).save(tmp_path / "m.npz")


def test_format_1_files_still_load(tmp_path):
    arrays = pe.io.model_arrays(pe.Ising([(0, 1), (1, 2)], [1.0, -0.5], [0.1, 0.2, 0.3]))
    header = json.loads(str(arrays["__pgm_energy__"][()]))
    header["format"] = 1
    arrays["__pgm_energy__"] = np.array(json.dumps(header))
    np.savez(tmp_path / "old.npz", **arrays)
    model = pe.load(tmp_path / "old.npz")
    assert model.params["J"].tolist() == [1.0, -0.5]


def test_suffix_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = pe.RBM(4, 2, rng=0)
    model.save("model")
    assert (tmp_path / "model.npz").exists() and not (tmp_path / "model").exists()
    for name in ("model", "model.npz", tmp_path / "model"):
        assert np.array_equal(pe.load(name).params["W"], model.params["W"])
    with pytest.raises(FileNotFoundError):
        pe.load("other")


def test_file_objects(tmp_path):
    import io

    buffer = io.BytesIO()
    pe.io.save(pe.RBM(3, 2, rng=1), buffer)
    buffer.seek(0)
    assert pe.load(buffer).params["W"].shape == (2, 3)


def saved_arrays():
    return pe.io.model_arrays(pe.RBM(3, 2, rng=0))


def with_header(edit):
    arrays = saved_arrays()
    header = json.loads(str(arrays["__pgm_energy__"][()]))
    edit(header)
    arrays["__pgm_energy__"] = np.array(json.dumps(header))
    return arrays


def damaged(kind, path):
    """Write a damaged or foreign file of the given kind to ``path``."""
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        pe.RBM(3, 2).save(path)
        path.write_bytes(path.read_bytes()[:200])
    elif kind == "npy":
        np.save(path, np.zeros(3))
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"a": 1}))
    elif kind == "object array":
        np.savez(path, __pgm_energy__=np.array([{"x": 1}], dtype=object))
    elif kind == "no header":
        np.savez(path, a=np.zeros(2))
    elif kind == "header not text":
        np.savez(path, __pgm_energy__=np.zeros(2))
    elif kind == "header not JSON":
        np.savez(path, __pgm_energy__=np.array("{nope"))
    elif kind == "header a list":
        np.savez(path, __pgm_energy__=np.array("[1, 2]"))
    elif kind == "unknown format":
        np.savez(path, **with_header(lambda h: h.update(format=99)))
    elif kind.startswith("missing "):
        key = kind.split()[1]
        np.savez(path, **with_header(lambda h: h.pop(key)))
    elif kind == "term missing config":
        np.savez(path, **with_header(lambda h: h["terms"][0].pop("config")))
    elif kind == "units not a dict":
        np.savez(path, **with_header(lambda h: h.update(units=[1])))
    elif kind == "no parameter array":
        arrays = saved_arrays()
        del arrays["param/W"]
        np.savez(path, **arrays)
    elif kind == "wrong constructor arguments":
        np.savez(path, **with_header(lambda h: h["terms"][0]["config"].update(bogus=1)))


KINDS = ["empty", "truncated", "npy", "pickle", "object array", "no header", "header not text",
         "header not JSON", "header a list", "unknown format", "missing units",
         "missing terms", "missing visible", "missing format", "term missing config",
         "units not a dict", "no parameter array", "wrong constructor arguments"]


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_or_foreign_files_are_a_value_error(tmp_path, kind):
    path = tmp_path / ("f.npy" if kind == "npy" else "f.npz")
    damaged(kind, path)
    expected = {"wrong constructor arguments": "cannot rebuild term 0",
                "missing format": "known format"}.get(kind, "not a pgm_energy model")
    with pytest.raises(ValueError, match=expected) as info:
        pe.load(path)
    if kind.startswith("missing ") and kind.split()[1] in ("units", "terms", "visible"):
        assert repr(kind.split()[1]) in str(info.value)
    if kind == "no parameter array":
        assert "'param/W'" in str(info.value)


def test_loading_runs_no_code(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("open(%r, 'w').write('ran')" % str(tmp_path / "ran"),))

    arrays = saved_arrays()
    arrays["param/W"] = np.array([Boom()], dtype=object)
    np.savez(tmp_path / "evil.npz", **arrays)
    with pytest.raises(ValueError, match="not a pgm_energy model"):
        pe.load(tmp_path / "evil.npz")
    assert not (tmp_path / "ran").exists()


def test_a_parameter_of_strings_is_a_damaged_file(tmp_path):
    arrays = pe.io.model_arrays(pe.RBM(3, 2, rng=0))
    arrays["param/W"] = np.full((2, 3), "x")
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="not a pgm_energy model"):
        pe.load(tmp_path / "bad.npz")
