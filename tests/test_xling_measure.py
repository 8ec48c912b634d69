"""The per-language ensemble measurement: settings put together from uniform runs, and the rule."""

from eval.xling_measure import breakdown, choose, combine


def _q(lang, hit1, rr10):
    return {"lang": lang, "hit1": hit1, "rr10": rr10}


def test_combine_takes_each_question_from_its_languages_weight():
    by_a = {
        0.0: {"a": _q("ja", 0.0, 0.5), "b": _q("zh", 1.0, 1.0), "c": _q("en", 0.0, 0.0), "d": _q("ko", 1.0, 1.0)},
        0.2: {"a": _q("ja", 1.0, 1.0), "b": _q("zh", 0.0, 0.5), "c": _q("en", 1.0, 1.0), "d": _q("ko", 0.0, 0.0)},
    }
    got = combine(by_a, {"ja": 0.2, "zh": 0.0, "en": 0.2})
    assert [got[k]["hit1"] for k in "abcd"] == [1.0, 1.0, 1.0, 1.0]  # ko has no weight: the shipped run's
    fig = breakdown(got)
    assert fig["all"] == {"hit@1": 1.0, "mrr@10": 1.0, "questions": 4}
    assert fig["zh"]["questions"] == 1
    assert breakdown(combine(by_a, {"ja": 0.0, "zh": 0.0, "en": 0.0})) == breakdown(by_a[0.0])


def _row(setting, seed, xling):
    return {"setting": setting, "dev": {"seed": {"all": {"hit@1": seed[0], "mrr@10": seed[1]}},
                                        "xling": {"all": {"hit@1": xling[0], "mrr@10": xling[1]}}}}


def test_choose_keeps_the_floor_then_best_mrr_then_least_weight():
    floor = {"seed": 0.8, "xling": 0.6}
    rows = [
        _row({"ja": 0.0, "zh": 0.0, "en": 0.0}, (0.8, 0.85), (0.6, 0.70)),
        _row({"ja": 0.0, "zh": 0.4, "en": 0.4}, (0.79, 0.99), (0.9, 0.95)),  # below the seed floor
        _row({"ja": 0.2, "zh": 0.2, "en": 0.0}, (0.85, 0.90), (0.7, 0.80)),
        _row({"ja": 0.0, "zh": 0.2, "en": 0.0}, (0.85, 0.90), (0.7, 0.80)),  # same figures, less weight
    ]
    ranked = choose(rows, floor)
    assert len(ranked) == 3
    assert ranked[0]["setting"] == {"ja": 0.0, "zh": 0.2, "en": 0.0}
    assert ranked[1]["setting"] == {"ja": 0.2, "zh": 0.2, "en": 0.0}
    assert ranked[-1]["setting"] == {"ja": 0.0, "zh": 0.0, "en": 0.0}
