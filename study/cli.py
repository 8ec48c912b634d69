"""``studyrag study …``: the study deck from the command line (the app's pages call the same library).

    studyrag study cards [--json]                       every card (built from the index)
    studyrag study sync                                 bring the stored deck up to date with the index
    studyrag study profiles [add NAME]                  list (or add) learner profiles (also --add NAME)
    studyrag study progress --profile NAME [--json]     due today, reviews per day, retention, mastery
    studyrag study export --anki deck.apkg [--profile NAME]  (or --csv FILE; --json FILE --profile NAME: our
                                                        progress file); without a profile: no scheduling state
    studyrag study import FILE --profile NAME           merge a progress file exported earlier
                                 [--any-learner]    … also one another learner exported
    studyrag study drill "QUESTION" --answer TEXT       grade an answer against the notes
    studyrag study questions                            the mock-interview questions (no answers in the notes)

Options everywhere: ``--index DIR`` (default ./index), ``--data DIR`` (default $STUDYRAG_DATA or
./data), ``--store postgresql://…`` (default $STUDYRAG_STORE: progress in PostgreSQL instead of
the data folder). Errors print one ``error:`` line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag.context import resolve
from rag.errors import RagError
from rag.safety import terminal_json, terminal_text
from rag.shell import EXIT_ERROR, EXIT_OK, add_location_options, guarded
from study.db import errors as db_errors


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other error here
        self.exit(2, f"error: {message} (see `studyrag study --help`)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="studyrag study", description="Flashcards, progress and the mock-interview drill.")
    common = argparse.ArgumentParser(add_help=False)
    add_location_options(common, "index", "data", "store")
    sub = p.add_subparsers(dest="cmd", parser_class=_Parser)
    c = sub.add_parser("cards", parents=[common], help="print every card")
    c.add_argument("--json", action="store_true", help="one JSON object per line")
    sub.add_parser("sync", parents=[common], help="update the stored deck from the index")
    c = sub.add_parser("profiles", parents=[common], help="list profiles; `profiles add NAME` adds one")
    c.add_argument("action", nargs="?", choices=("add",), help="add: add the profile NAME")
    c.add_argument("name", nargs="?", metavar="NAME", help="the profile to add")
    c.add_argument("--add", metavar="NAME", help="add a profile (same as `profiles add NAME`)")
    c = sub.add_parser("progress", parents=[common], help="a profile's progress")
    c.add_argument("--profile", required=True)
    c.add_argument("--json", action="store_true")
    c.add_argument("--days", type=int, default=14)
    c = sub.add_parser(
        "export", parents=[common], help="export the deck (with a profile's scheduling state when --profile is given)"
    )
    c.add_argument("--profile", default=None, help="whose scheduling state to include (required for --json)")
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--anki", type=Path, metavar="FILE.apkg")
    g.add_argument("--csv", type=Path, metavar="FILE.csv")
    g.add_argument("--json", type=Path, metavar="FILE.json", help="our progress file (for `study import`)")
    c = sub.add_parser("import", parents=[common], help="merge a progress file into a profile")
    c.add_argument("file", type=Path)
    c.add_argument("--profile", required=True)
    c.add_argument("--any-learner", action="store_true",
                   help="merge the file even when another learner exported it (their reviews count as this profile's)")
    c = sub.add_parser("drill", parents=[common], help="grade an answer to a question against the notes")
    c.add_argument("question")
    c.add_argument("--answer", required=True)
    c.add_argument("--json", action="store_true")
    c = sub.add_parser("questions", parents=[common], help="list the mock-interview questions")
    c.add_argument("--json", action="store_true")
    return p


def _index(path: str | Path):
    from rag.backends import open_index

    return open_index(path)


def _store(args):
    from study.store import Store

    return Store.open(args.store)


def _synced_store(args):
    """The store, its deck first brought up to date with the index when there is one."""
    from study.cards import cards_from_index

    store = _store(args)
    if not isinstance(args.index, Path) or args.index.exists():  # an engine index: open it (or one error)
        store.sync_cards(cards_from_index(_index(args.index)))
    elif not store.cards():
        store.close()
        raise RagError(f"no cards yet and no index at {args.index}: build one with `python -m ingest`")
    return store


def _out(obj) -> None:
    sys.stdout.write(terminal_json(json.dumps(obj, ensure_ascii=False)) + "\n")


def _say(line: str) -> None:
    """Print a line holding text from the notes (control characters written out)."""
    sys.stdout.write(terminal_text(line) + "\n")


def cmd_cards(args) -> None:
    from study.cards import cards_from_index

    for card in cards_from_index(_index(args.index)):
        d = card.to_dict()
        if args.json:
            _out({k: d[k] for k in ("id", "kind", "front", "back", "source", "sources", "topic")})
        else:
            lang = card.langs[0]
            _say(f"{card.id}\n  Q: {card.front[lang]}\n  A: {card.back[lang].splitlines()[0]}")


def cmd_sync(args) -> None:
    from study.cards import cards_from_index

    with _store(args) as store:
        r = store.sync_cards(cards_from_index(_index(args.index)))
    print(
        f"cards: {len(r.added)} added, {len(r.updated)} updated, {len(r.unchanged)} unchanged, "
        f"{len(r.archived)} archived, {len(r.restored)} restored"
    )


def cmd_profiles(args) -> None:
    if args.action == "add" and args.name is None:
        raise ValueError("`profiles add` needs a NAME: studyrag study profiles add NAME")
    if args.action == "add" and args.add is not None:
        raise ValueError("give the name once: `profiles add NAME` or `profiles --add NAME`")
    name = args.name if args.action == "add" else args.add
    with _store(args) as store:
        if name is not None:
            store.add_profile(name)
        for p in store.profiles():
            print(p.name)


def cmd_progress(args) -> None:
    from study import progress

    with _store(args) as store:
        data = progress.summary(store, store.profile(args.profile).id, days=args.days)
    if args.json:
        _out(data)
        return
    d, r = data["due"], data["retention"]
    print(
        f"due now {d['due_now']}, due today {d['due_today']}, new left today {d['new_left_today']} ({d['cards']} cards)"
    )
    print("retention " + ("—" if r["retention"] is None else f"{r['retention']:.0%} of {r['reviews']} reviews"))
    for day in data["reviews_per_day"]:
        if day["reviews"]:
            print(f"  {day['date']}: {day['reviews']} reviews ({day['again']} again)")
    for t in data["mastery"]:
        _say(f"  {t['topic']}: {t['seen']}/{t['cards']} seen, {t['mature']} mature, mastery {t['mastery']:.0%}")


def cmd_export(args) -> None:
    from study import export
    from study.store import ProfileError

    if args.json is not None and args.profile is None:
        raise ValueError("--json writes a learner's progress file: add --profile NAME")
    with _synced_store(args) as store:
        target = next(t for t in (args.json, args.anki, args.csv) if t is not None)
        if store.owns(target):  # an export over the store would destroy every learner's progress
            raise ValueError(f"{target} is the progress store itself; export to another file")
        if args.profile is not None:
            try:
                store.profile(args.profile)
            except ProfileError as e:
                raise ValueError(
                    f"{e} (add it with `studyrag study profiles add NAME`, or export the deck without --profile)"
                ) from None
        if args.json is not None:
            path, n = (
                export.write_progress(args.json, store, args.profile),
                len(store.states(store.profile(args.profile).id)),
            )
        else:
            cards, states = export.deck_for_export(store, args.profile)  # no profile: no states
            path = (
                export.write_anki(args.anki, cards, states, profile=args.profile)
                if args.anki is not None
                else export.write_csv(args.csv, cards, states)
            )
            n = len(cards)
    print(f"wrote {path} ({n} {'card states' if args.json is not None else 'cards'})")


def cmd_import(args) -> None:
    from study import export

    from study import validate

    f = args.file
    owner = export.file_profile(f.read_bytes()) if f.is_file() and f.stat().st_size <= validate.MAX_BYTES else None
    if owner is not None and owner != args.profile and not args.any_learner:
        # as the app asks first: another learner's reviews would count as this one's
        raise ValueError(f"{f} is the progress of {owner!r}, not of {args.profile!r}; "
                         f"add --any-learner to merge it into {args.profile!r}")
    with _synced_store(args) as store:
        r = export.import_progress(store, args.profile, args.file)
    print(
        f"imported into {args.profile!r}: {r.states_taken} card states taken, {r.states_kept} kept (newer here), "
        f"{r.reviews_added} reviews added"
        + (f"; {len(r.unknown_cards)} cards not in this deck skipped" if r.unknown_cards else "")
    )


def cmd_drill(args) -> None:
    from rag.search import Searcher
    from study import drill
    from study.cards import cards_from_index

    searcher = Searcher.open(args.index)
    # a card's question (as the app's mock interview offers it) is about that card's passages
    card = next((c for c in cards_from_index(searcher.index) if args.question.strip() in c.front.values()), None)
    g = drill.drill(searcher, args.question, args.answer, passages=card.chunk_ids if card else ())
    if args.json:

        def pt(r):
            return {
                "text": r.point.text,
                "source": r.point.source.to_dict(),
                "evidence": r.evidence,
                "contradicted": r.contradicted,
            }

        _out(
            {
                "verdict": g.verdict,
                "message": g.message,
                "share": g.share,
                "covered": [pt(r) for r in g.covered],
                "missed": [pt(r) for r in g.missed],
            }
        )
        return
    _say(f"{g.verdict}: {g.message}")
    for mark, rs in (("+", g.covered), ("-", g.missed)):
        for r in rs:
            _say(f"  {mark} {r.point.text}  [{r.point.source.doc_id} {r.point.source.start}:{r.point.source.end}]")


def cmd_questions(args) -> None:
    from study.cards import drill_questions_from_index

    for q in drill_questions_from_index(_index(args.index)):
        _out(q.to_dict()) if args.json else _say(f"{q.id}\n  {q.text}")


COMMANDS = {
    "cards": cmd_cards,
    "sync": cmd_sync,
    "profiles": cmd_profiles,
    "progress": cmd_progress,
    "export": cmd_export,
    "import": cmd_import,
    "drill": cmd_drill,
    "questions": cmd_questions,
}


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as e:  # bad arguments (already reported on one line) or --help
        return int(e.code or 0)
    if args.cmd is None:
        print(
            "usage: studyrag study {" + ",".join(COMMANDS) + "} [options]\n" + __doc__.split("\n\n")[1].rstrip(),
            file=sys.stderr,
        )
        return EXIT_ERROR
    return _run(args)


@guarded
def _run(args) -> int:
    from study.store import StoreError

    ctx = resolve(index=args.index, data=args.data, store=args.store)
    args.index, args.data, args.store = ctx.index_target, ctx.data, ctx.store
    try:
        COMMANDS[args.cmd](args)
    except db_errors() as e:  # the database failed mid-command (a full disk, a server gone)
        raise StoreError(f"progress store {ctx.store_label}: {e}") from None
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
