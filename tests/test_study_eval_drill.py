"""The drill-grading eval: the labelled file, agreement and confusion by hand, and the tuner
picking thresholds from the dev half only (fake encoder)."""

from __future__ import annotations

import json

import pytest

from conftest import FakeEncoder, fake_tuned
from eval import drill as ed
from rag.index import open_index
from rag.search import Searcher
from study import grading


def test_the_labelled_set():
    items = ed.load_items()
    graded = [it for it in items if it.label in ed.LABELS]
    assert len(graded) >= 40 and {it.lang for it in graded} == {"ja", "zh", "en"}
    assert {it.label for it in graded} == set(ed.LABELS)
    by_question = {}
    for it in items:
        by_question.setdefault(it.question, set()).add(it.split)
    assert all(len(s) == 1 for s in by_question.values())  # a question's answers sit in one half
    assert len({it.id for it in items}) == len(items)


def test_bad_label_is_refused(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text(
        json.dumps({"id": "x", "question": "q", "lang": "ja", "answer": "a", "label": "great", "split": "dev"})
    )
    with pytest.raises(ValueError, match="label must be"):
        ed.load_items(f)


def test_agreement_and_confusion_by_hand():
    items = [ed.Item(f"i{k}", "q", "ja", "a", lab, "dev") for k, lab in enumerate(["good", "good", "partial", "wrong"])]
    preds = {"i0": "good", "i1": "partial", "i2": "partial", "i3": "uncovered"}
    assert ed.agreement(items, preds) == 0.5
    conf = ed.confusion(items, preds)
    assert conf["good"] == {"good": 1, "partial": 1, "wrong": 0, "uncovered": 0}
    assert conf["wrong"]["uncovered"] == 1


def test_tuner_uses_the_dev_half_only(corpus_fake_index):
    searcher = Searcher(open_index(corpus_fake_index[0]), encoder=FakeEncoder(), tuned=fake_tuned())
    q = "LoRAとQLoRAのファインチューニングの違いは？"
    own = "LoRAはモデル層に低ランク行列を追加します。QLoRAはさらに量子化を適用しメモリ使用量を削減します。"
    items = [
        ed.Item("a", q, "ja", own, "good", "dev"),
        ed.Item("b", q, "ja", "昨日はラーメンを食べました。", "wrong", "dev"),
        ed.Item("c", q, "ja", own, "wrong", "test"),  # a test label the tuner must not see
    ]
    refs, measured, timing = ed.measure_all(searcher, items)
    assert set(timing) == {"ms_per_question", "ms_per_answer"}
    params, dev_agreement = ed.tune(items, refs, measured)
    assert dev_agreement == 1.0
    assert ed.predict(items[0], refs, measured, params) == "good"
    assert ed.predict(items[2], refs, measured, params) == "good"  # so the test item disagrees
    assert isinstance(params, grading.Params)
