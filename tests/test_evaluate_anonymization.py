"""evaluate anonymization: the methods x judges table, its counts, the independent flat-field halves of the PRNU
view, skipped methods with their reasons, and the command's outputs.

The data set is synthetic (tests/synth.py) with the folder names of three real-dev devices (two camera models),
so the shipped attributors know the true classes; they do not recognise synthetic images, which does not matter:
the tests compare the table with the judges' own verdicts, computed here independently.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import synth
from typer.testing import CliRunner

from camforensics.cli.app import app
from camforensics.core.anonymize import BASELINES
from camforensics.inference.anonymizer import class_key
from camforensics.inference.attribution import AttributionParams, attribute_pixels
from camforensics.inference.registry import ModelRegistry
from camforensics.io.library import FingerprintLibrary
from camforensics.pipelines.anonymize.prints import prints_from_flats, split_halves
from camforensics.pipelines.anonymize.judges import judge_panel
from camforensics.pipelines.anonymize.evaluate import EvalAnonParams, draw_targets, evaluate_anonymization

runner = CliRunner()
SHIPPED = Path(__file__).resolve().parents[1] / "models"
DEVICES = {"Samsung_GT-I9300_0": 11, "Samsung_GT-I9300_1": 12, "LG_LG-D605_0": 13}  # device folder -> PRNU seed
TRUE = {
    "Samsung_GT-I9300_0": "Samsung GT-I9300",
    "Samsung_GT-I9300_1": "Samsung GT-I9300",
    "LG_LG-D605_0": "LG LG-D605",
}
N_FLAT, N_NAT = 4, 2
JUDGES = "attributor-hp,attributor-cc"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """<root>/<device>/{flat,nat}/*.png: 3 devices of 2 camera models, strong planted PRNU, 256x256."""
    root = tmp_path_factory.mktemp("evalanon") / "data"
    for device, seed in DEVICES.items():
        k = synth.make_prnu((256, 256), seed, strength=0.03)
        for kind, n in (("flat", N_FLAT), ("nat", N_NAT)):
            (root / device / kind).mkdir(parents=True)
            for i in range(n):
                rgb = synth.shoot(k, 100 * seed + 10 * (kind == "flat") + i, flat=kind == "flat", jpeg_quality=None)
                cv2.imwrite(str(root / device / kind / f"{kind}{i}.png"), rgb[:, :, ::-1])
    return root


@pytest.fixture(autouse=True)
def shipped_models(monkeypatch):
    monkeypatch.delenv("CAMFORENSICS_MODELS", raising=False)


@pytest.fixture(scope="module")
def run(data, tmp_path_factory) -> tuple[int, Path, dict, dict]:
    """One CLI run: baselines jpeg and median, remove-fingerprint, and targeted (no model shipped: skipped)."""
    out = tmp_path_factory.mktemp("run") / "out"
    res = invoke("evaluate", "anonymization", data, "--methods", "jpeg,median,remove-fingerprint,targeted",
                 "--judges", JUDGES, "--model-threads", 1, "--targets-per-image", 2, "-o", out)  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    report = json.loads((out / "report.json").read_text())
    return res.exit_code, out, metrics, report


def test_halves_are_disjoint_seeded_and_cover_the_flat_fields(data):
    paths = [Path(f"f{i}.jpg") for i in range(7)]
    a, c = split_halves(paths, 0, "dev")
    assert not set(a) & set(c) and sorted(a + c) == sorted(paths) and (len(a), len(c)) == (3, 4)
    assert split_halves(list(reversed(paths)), 0, "dev") == (a, c)  # the order given does not matter
    assert any(split_halves(paths, s, "dev") != (a, c) for s in range(1, 6))  # the seed does
    from camforensics.io.datasets import scan_dataset

    prints = prints_from_flats(scan_dataset(data).records, seed=0)
    for device in DEVICES:
        info = prints.devices[device]
        assert info["status"] == "fingerprinted" and info["disjoint"]
        halves = set(info["attack"]["paths"]), set(info["check"]["paths"])
        assert not halves[0] & halves[1]
        assert halves[0] | halves[1] == {str(p) for p in (data / device / "flat").iterdir()}
        assert not np.array_equal(prints.attack[device].k, prints.check[device].k)


def test_table_counts_add_up_and_skipped_methods_say_why(run, data):
    code, out, metrics, report = run
    assert code == 0
    n_images = len(DEVICES) * N_NAT
    m = metrics["methods"]
    assert list(m) == ["jpeg", "median", "remove-fingerprint", "targeted"]
    assert (
        m["targeted"]["status"] == "skipped"
        and "no targeted camera-model anonymizer is registered" in m["targeted"]["reason"]
    )
    assert metrics["data"]["n_images"] == n_images and metrics["data"]["content"] == "nat"
    results = report["results"]
    assert len(results) == 3 * n_images
    for name in ("jpeg", "median", "remove-fingerprint"):
        block = m[name]
        assert block["n_results"] == block["n_ok"] + block["n_failed"] == n_images and block["n_failed"] == 0
        assert block["n_images"] == n_images and block["quality"]["n"] == n_images
        assert block["prnu"]["n_checked"] + block["prnu"]["n_unchecked"] == n_images
        mine = [r for r in results if r["item"]["method"] == name]
        for judge in JUDGES.split(","):
            b = block["judges"][judge]
            assert b["n_judged"] + b["n_failed"] == n_images
            verdicts = [j for r in mine for j in r["judges"] if j["judge"] == judge]
            assert b["untargeted"]["n"] == n_images  # every true model is a class of the shipped judges
            assert b["untargeted"]["n_success"] == sum(j["untargeted_success"] for j in verdicts)
            assert b["targeted"]["n"] == 2 * n_images  # two targets per image, all known to the judges
            assert b["targeted"]["n_success"] == sum(t["hit"] for j in verdicts for t in j["targets"])
            assert b["untargeted"]["rate"] == pytest.approx(b["untargeted"]["n_success"] / n_images)
    for r in results:
        src = Path(r["input"]["path"])
        assert r["input"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
        assert len(r["output"]["sha256"]) == 64 and r["output"]["path"] is None and not r["output"]["kept"]
        assert r["item"]["model"] == TRUE[r["item"]["device"]]
        for j in r["judges"]:
            assert len(j["targets"]) == 2 and all(
                class_key(t["target"]) != class_key(j["true_class"]) for t in j["targets"]
            )
    assert not (out / "images").exists()
    table = (out / "table.md").read_text()
    assert "| remove-fingerprint |" in table and "skipped: no targeted camera-model anonymizer" in table
    assert "attributor-hp" in table and "independent" in table and "| (unaltered inputs) |" in table
    assert metrics["inputs"]["n_images"] == n_images and metrics["inputs"]["prnu"]["n_checked"] == n_images


def test_remove_fingerprint_lowers_pce_against_the_other_half(run):
    _, _, metrics, report = run
    removal = [r for r in report["results"] if r["item"]["method"] == "remove-fingerprint"]
    for r in removal:
        own = r["own_device_check"]
        assert own["library"] == "flat-field half 'check'"
        assert r["removed_device"]["library"] == "flat-field half 'attack'"
        assert own["pce_before"] > 60 and own["pce_after"] < own["pce_before"] / 5
        # Against the very estimate it removed the PCE vanishes; the independent estimate is the honest check.
        assert r["removed_device"]["pce_after"] < 60
        # The removal was debiased by the attack half's split-half reliability (recorded with the devices).
        fitted = r["method"]["fitted"]["removal"]
        rel = metrics["prnu"]["devices"][r["item"]["device"]]["attack"]["reliability"]["reliability"]
        assert fitted["debias"] == pytest.approx(1 / rel) and fitted["debias"] > 1
    prnu = metrics["methods"]["remove-fingerprint"]["prnu"]
    assert prnu["n_checked"] == len(removal) and prnu["n_below_before"] == 0
    assert prnu["share_below_after"] == prnu["n_below_after"] / prnu["n_checked"]
    assert prnu["pce_median_after"] < prnu["pce_median_before"] / 5
    assert "two disjoint seeded halves" in metrics["prnu"]["source"]


def test_identity_method_known_answer(data, tmp_path, monkeypatch):
    """A method that changes nothing: untargeted success = the judge's misattribution rate on the inputs, and
    targeted success = the share of (image, target) pairs whose input it already calls the target."""
    monkeypatch.setitem(BASELINES, "median", lambda pixels, **_: np.array(pixels, copy=True))
    panel = judge_panel("attributor-rgb", SHIPPED, threads=1)
    rep = evaluate_anonymization(data, params=EvalAnonParams(methods=("median",), seed=3, targets_per_image=1),
                                 judges=panel, output_dir=tmp_path / "o")  # fmt: skip
    judge = ModelRegistry(SHIPPED).load("attributor-rgb", threads=1)
    classes = judge.entry.classes
    wrong = hits = 0
    nat = sorted((data / d / "nat" / f"nat{i}.png", d) for d in DEVICES for i in range(N_NAT))
    for index, (path, device) in enumerate(nat):
        rgb = cv2.imread(str(path))[:, :, ::-1]
        top = attribute_pixels(rgb, judge, params=AttributionParams(top_k=1))["top_k"][0]["model"]
        wrong += top != TRUE[device]
        (target,) = draw_targets(TRUE[device], classes, 1, seed=3, index=index)
        hits += top == target
    block = rep.summary["methods"]["median"]["judges"]["attributor-rgb"]
    assert block["untargeted"]["n_success"] == block["untargeted"]["n_misattributed_before"] == wrong
    assert block["untargeted"]["rate"] == block["untargeted"]["rate_before"] == pytest.approx(wrong / len(nat))
    assert block["targeted"]["n_success"] == hits
    ref = rep.summary["inputs"]["judges"]["attributor-rgb"]  # the reference row: the unaltered inputs
    assert (ref["untargeted"]["n_success"], ref["targeted"]["n_success"]) == (wrong, hits)
    assert rep.summary["inputs"]["n_images"] == len(nat)
    assert rep.summary["methods"]["median"]["quality"]["n_psnr_infinite"] == len(nat)


def test_library_needs_an_attack_library_for_the_removal(data, tmp_path):
    from camforensics.io.datasets import scan_dataset

    prints = prints_from_flats(scan_dataset(data).records, seed=0)
    libs = {}
    for role, refs in (("check", prints.check), ("attack", prints.attack)):
        lib = FingerprintLibrary(tmp_path / role, create=True)
        for device, ref in refs.items():
            lib.add(device, ref.k, meta={"n_images": 2})
        libs[role] = lib.root
    res = invoke("evaluate", "anonymization", data, "--methods", "remove-fingerprint,jpeg", "--judges",
                 "attributor-hp", "--library", libs["check"], "--images", 1, "-o", tmp_path / "a", "-q")  # fmt: skip
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())["methods"]
    assert m["remove-fingerprint"]["status"] == "skipped" and "--attack-library" in m["remove-fingerprint"]["reason"]
    assert m["jpeg"]["n_ok"] == len(DEVICES) and m["jpeg"]["prnu"]["n_checked"] == len(DEVICES)
    res = invoke("evaluate", "anonymization", data, "--methods", "remove-fingerprint", "--judges", "attributor-hp",
                 "--library", libs["check"], "--attack-library", libs["attack"], "--images", 1, "-o", tmp_path / "b",
                 "-q", "--keep-images")  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "b" / "report.json").read_text())
    for r in doc["results"]:
        assert r["own_device_check"]["pce_after"] < r["own_device_check"]["pce_before"] / 5
        assert r["own_device_check"]["library"] == str(libs["check"])
        assert (
            Path(r["output"]["path"]).is_file() and Path(r["output"]["path"]).parent.parent == tmp_path / "b" / "images"
        )


def test_a_bad_image_fails_alone_with_exit_code_1(data, tmp_path):
    bad = tmp_path / "data"
    import shutil

    shutil.copytree(data, bad)
    (bad / "LG_LG-D605_0" / "nat" / "broken.png").write_bytes(b"not a png")
    res = invoke("evaluate", "anonymization", bad, "--methods", "jpeg", "--judges", "attributor-hp", "-o",
                 tmp_path / "o", "-q")  # fmt: skip
    assert res.exit_code == 1
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())["methods"]["jpeg"]
    assert m["n_failed"] == 1 and m["n_ok"] == len(DEVICES) * N_NAT


def test_docs_entry():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    entry = docs.split("## camforensics evaluate anonymization", 1)[1].split("\n## ", 1)[0]
    for option in ("--methods", "--images", "--content", "--seed", "--targets-per-image", "--library",
                   "--attack-library", "--device-map", "--threshold", "--judges", "--targeted-model", "--erase-model",
                   "--models-dir", "--model-threads", "--tile", "--overlap", "--keep-images", "--layout", "-o"):  # fmt: skip
        assert option in entry, option
    assert "independent" in entry


def test_learned_methods_join_when_registered_and_run_per_target(data, anon_registry, tmp_path):
    """The tiny exported anonymizers (tests/anonymizer_fixtures.py): the default eraser joins the default methods,
    the targeted model when named; targeted runs once per (image, target) among its own classes."""
    import shutil

    reg = tmp_path / "models"
    shutil.copytree(anon_registry, reg)
    into = ModelRegistry(reg)
    entry = ModelRegistry(SHIPPED).entry("attributor-hp")
    shutil.copy2(entry.path, reg / entry.path.name)
    into.register(entry.name, entry.meta)
    args = ["evaluate", "anonymization", data, "--models-dir", reg, "--images", 1, "--model-threads", 1, "-q"]
    res = invoke(*args, "-o", tmp_path / "a")
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())["methods"]
    assert list(m) == ["median", "gaussian", "jpeg", "denoise", "remove-fingerprint", "erase"]  # no default targeted
    res = invoke(*args, "--methods", "targeted,erase", "--targeted-model", "cama-tiny", "--targets-per-image", 2,
                 "-o", tmp_path / "b")  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "b" / "report.json").read_text())
    targeted = [r for r in doc["results"] if r["item"]["method"] == "targeted"]
    assert len(targeted) == 2 * len(DEVICES) and len(doc["results"]) == 3 * len(DEVICES)
    for r in targeted:
        assert r["item"]["target"] in ("Alpha One", "Beta Two", "Gamma Three")
        assert (
            r["method"]["parameters"]["model"] == "cama-tiny"
            and r["method"]["parameters"]["target"] == r["item"]["target"]
        )
    per_image = {}
    for r in targeted:
        per_image.setdefault(r["input"]["sha256"], set()).add(r["item"]["target"])
    assert all(len(t) == 2 for t in per_image.values())
    roles = sorted((x["name"], x["role"]) for x in doc["run"]["models"])
    assert roles == [("attributor-hp", "judge"), ("cama-tiny", "anonymizer"), ("erase-tiny", "anonymizer")]
    summary = doc["summary"]
    assert summary["targets"]["classes"] == ["Alpha One", "Beta Two", "Gamma Three"]
    assert any("independent of the learned anonymizers" in n for n in summary["notes"])
