"""The answer benchmark's "right passage first" diagnostic (eval.answers.OracleFirst): which
searches it reorders and how, on a deterministic fake searcher."""

from types import SimpleNamespace

from eval.answers import Item, OracleFirst, oracle_run
from rag.types import Chunk, Hit


def chunk(i, text, parallel=None, lang="ja"):
    return Chunk(id=f"c{i}", doc_id="d", text=text, start=0, end=len(text), lang=lang, parallel=parallel)


CHUNKS = [
    chunk(0, "過学習への対策: 正則化とドロップアウト"),
    chunk(1, "Transformerは自己注意で並列に処理する"),
    chunk(2, "ハルシネーションは事実と異なる情報をもっともらしく生成すること", parallel="c3"),
    chunk(3, "幻觉是生成与事实不符的内容", parallel="c2", lang="zh"),
    chunk(4, "关于模型的其他说明", parallel="c5", lang="zh"),
    chunk(5, "幻覚の例: 事実と異なる情報", parallel="c4"),
]


class FakeSearcher:
    def __init__(self):
        self.index = SimpleNamespace(chunks=CHUNKS, by_id={c.id: i for i, c in enumerate(CHUNKS)})
        self.calls = []

    def search_query(self, query, k=10, mode=None, **kw):
        self.calls.append((query, k, mode))
        order = [0, 1, 3, 2, 4]
        return [Hit(CHUNKS[i], rank=r + 1, score=1.0 - 0.1 * r) for r, i in enumerate(order)][:k]


def item(points, expect="answer", previous=None):
    return Item("q1", "什么是幻觉?", "zh", "definition", "dev", expect, points, previous)


def test_the_passage_holding_the_most_key_points_goes_first_with_the_first_score():
    s = FakeSearcher()
    o = OracleFirst(s)
    o.item = item((("自己注意",), ("並列",), ("対策",)))
    hits = o.search_query("q", k=3, mode="hybrid")
    assert [h.chunk.id for h in hits] == ["c1", "c0", "c3"]  # c1 holds two points, c0 one; the rest keep their order
    assert hits[0].score == 1.0
    assert s.calls[-1][1] >= 20  # looked deeper than asked


def test_a_passage_counts_the_points_its_translation_holds():
    o = OracleFirst(FakeSearcher())
    o.item = item((("もっともらしく",),))
    # c3 (zh) is ranked above c2; its Japanese twin c2 holds the point: c3 counts, and comes first
    assert o.search_query("q", k=2, mode="hybrid")[0].chunk.id == "c3"


def test_dense_searches_off_topic_items_and_pointless_orders_are_left_alone():
    s = FakeSearcher()
    o = OracleFirst(s)
    o.item = item((("事実と異なる情報",),))
    assert [h.chunk.id for h in o.search_query("q", k=3, mode="dense")] == ["c0", "c1", "c3"]
    o.item = item((("存在しない語",),))  # no passage holds it: the search's order stays
    assert [h.chunk.id for h in o.search_query("q", k=3, mode="hybrid")] == ["c0", "c1", "c3"]
    o.item = None
    assert [h.chunk.id for h in o.search_query("q", k=3, mode="hybrid")] == ["c0", "c1", "c3"]


def test_the_previous_turn_of_a_follow_up_is_asked_without_the_oracle(monkeypatch):
    seen = []

    def fake_ask(searcher, question, *a, **kw):
        seen.append((question, searcher.item.qid if searcher.item else None))
        return SimpleNamespace(answered=True, text="", abstained=False)

    monkeypatch.setattr("eval.answers.ask", fake_ask)
    oracle_run(FakeSearcher(), [item((("x",),), previous="过拟合是什么?")])
    assert seen == [("过拟合是什么?", None), ("什么是幻觉?", "q1")]
