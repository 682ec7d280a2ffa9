"""Korean is complete: every message of the committed catalogue translated with the same placeholders, compiled,
loaded by Django, and used by the pages. Nothing here runs makemessages: it checks the committed .po/.mo only."""

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import translation

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "locale" / "ko" / "LC_MESSAGES"
PO, MO = LOCALE / "django.po", LOCALE / "django.mo"
# Python-format placeholders (%(name)s, %(m)02d, %s, %%), template variables, {braces} the user types, HTML tags.
PLACEHOLDER = re.compile(
    r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[sdifr]|%%|%[sdifr]|\{\{\s*[\w.]+\s*\}\}|\{\w+\}|</?[A-Za-z][^>]*>"
)
# Pages a Korean user sees first. Key templates whose {% translate %} strings must all be in the catalogue.
KEY_TEMPLATES = [
    "base.html",
    "leaderboard/index.html",
    "leaderboard/_table.html",
    "leaderboard/about.html",
    "leaderboard/submit.html",
    "runs/queue.html",
    "runs/_queue_table.html",
]
NAV_KO = [
    "프라이빗 LLM 리더보드",
    "LLM 벤치마크",
    "시간에 따른 지표",
    ">소개</a>",
    ">제출</a>",
    ">평가기</a>",
    ">대기열</a>",
    "로그아웃",
]
NAV_EN = [
    "Private LLM Leaderboard",
    ">LLM Benchmark</a>",
    ">Metrics through time</a>",
    ">About</a>",
    ">Submit</a>",
    ">Evaluator</a>",
    ">Queue</a>",
    ">Log out<",
]


def _unquote(line: str) -> str:
    """The text of one quoted .po string (C escapes, UTF-8)."""
    return line[1:-1].encode().decode("unicode_escape").encode("latin-1").decode("utf-8")


def _po_entries(path: Path) -> list[dict]:
    """Every entry of a .po file, the header (empty msgid) first: msgctxt, msgid, msgid_plural, msgstr {index: text}
    and flags. Enough of the format for these checks; obsolete (#~) and previous (#|) lines are skipped."""
    entries, current, field = [], None, None
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if current:
                entries.append(current)
            current, field = None, None
            continue
        current = current or {"flags": "", "msgctxt": None, "msgid": "", "msgid_plural": None, "msgstr": {}}
        if line.startswith("#,"):
            current["flags"] += line
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            if isinstance(field, tuple):
                current["msgstr"][field[1]] += _unquote(line)
            else:
                current[field] += _unquote(line)
        else:
            keyword, value = line.split(" ", 1)
            if keyword.startswith("msgstr"):
                field = ("msgstr", int(keyword[7:-1]) if "[" in keyword else 0)
                current["msgstr"][field[1]] = _unquote(value)
            else:
                field = keyword
                current[keyword] = _unquote(value)
    return entries


def _messages() -> list[dict]:
    return [entry for entry in _po_entries(PO) if entry["msgid"]]


@pytest.fixture
def user_client(client):
    client.force_login(get_user_model().objects.create_user("u", password="pw"))
    return client


def test_header_declares_korean_with_one_plural_form():
    header = _po_entries(PO)[0]
    assert header["msgid"] == ""
    assert "Language: ko\n" in header["msgstr"][0]
    assert "Plural-Forms: nplurals=1; plural=0;\n" in header["msgstr"][0]
    assert "Content-Type: text/plain; charset=UTF-8\n" in header["msgstr"][0]


def test_every_korean_message_is_translated_with_its_placeholders():
    entries = _messages()
    assert len(entries) > 400
    for entry in entries:
        assert "fuzzy" not in entry["flags"], f"fuzzy: {entry['msgid']!r}"
        if entry["msgid_plural"] is not None:
            assert list(entry["msgstr"]) == [0], f"Korean has one plural form: {entry['msgid']!r}"
        for translated in entry["msgstr"].values():
            assert translated.strip(), f"untranslated: {entry['msgid']!r}"
            for source in filter(None, (entry["msgid"], entry["msgid_plural"])):
                assert set(PLACEHOLDER.findall(translated)) == set(PLACEHOLDER.findall(source)), (
                    f"placeholders differ: {source!r} -> {translated!r}"
                )


def test_compiled_catalogue_is_not_older_than_the_po():
    assert MO.exists() and MO.stat().st_mtime >= PO.stat().st_mtime - 1, "run manage.py compilemessages -l ko"


def test_compiled_catalogue_holds_every_translation():
    """What Django loads from the .mo is what the .po says (a .po edited without compilemessages fails here)."""
    stale = []
    with translation.override("ko"):
        for entry in _messages():
            msgid, plural, context, expected = (
                entry["msgid"],
                entry["msgid_plural"],
                entry["msgctxt"],
                entry["msgstr"][0],
            )
            if plural is None:
                got = [translation.pgettext(context, msgid) if context else translation.gettext(msgid)]
            elif context:
                got = [translation.npgettext(context, msgid, plural, n) for n in (1, 2, 11)]
            else:
                got = [translation.ngettext(msgid, plural, n) for n in (1, 2, 11)]
            if any(text != expected for text in got):
                stale.append(msgid)
    assert not stale, f"run manage.py compilemessages -l ko; stale: {stale[:5]}"


def test_plural_messages_use_the_single_korean_form():
    with translation.override("ko"):
        assert translation.ngettext("%(counter)s model", "%(counter)s models", 1) % {"counter": 1} == "모델 1개"
        assert translation.ngettext("%(counter)s model", "%(counter)s models", 7) % {"counter": 7} == "모델 7개"
    with translation.override("en"):
        assert translation.ngettext("%(counter)s model", "%(counter)s models", 7) % {"counter": 7} == "7 models"


def _template_msgids(text: str) -> set[tuple[str | None, str]]:
    """(msgctxt, msgid) of the {% translate %} / {% blocktranslate %} tags of a template, as makemessages writes
    them."""
    found = set()
    for match in re.finditer(r"""{%\s*(?:translate|trans)\s+(["'])(.*?)\1(.*?)%}""", text):
        if "noop" not in match.group(3):
            context = re.search(r"""context\s+(["'])(.*?)\1""", match.group(3))
            found.add((context and context.group(2), match.group(2).replace("%", "%%")))
    for match in re.finditer(
        r"{%\s*(?:blocktranslate|blocktrans)\b(.*?)%}(.*?){%\s*(?:endblocktranslate|endblocktrans)\s*%}",
        text,
        flags=re.S,
    ):
        options, body = match.groups()
        body = re.split(r"{%\s*plural\s*%}", body)[0]
        if "trimmed" in options:
            body = " ".join(line.strip() for line in body.splitlines() if line.strip())
        body = re.sub(r"{{\s*(\w+)\s*}}", r"%(\1)s", body.replace("%", "%%"))
        context = re.search(r"""context\s+(["'])(.*?)\1""", options)
        found.add((context and context.group(2), body))
    return found


def test_key_templates_are_covered_by_the_catalogue():
    catalogue = {(entry["msgctxt"], entry["msgid"]) for entry in _messages()}
    for name in KEY_TEMPLATES:
        msgids = _template_msgids((ROOT / "templates" / name).read_text(encoding="utf-8"))
        assert msgids, name
        missing = msgids - catalogue
        assert not missing, f"{name}: not in the ko catalogue (run `make messages` and translate): {missing}"


@pytest.mark.parametrize(
    ("url_name", "korean", "english"),
    [
        (
            "leaderboard:index",
            ["CSV 내보내기", "모델 유형", "정밀도", "파라미터 수(B)", "라이선스", "모델 sha", "모델 0개"],
            ["Export CSV", "Model type", "#Params (B)", "License", "Revision", "0 models"],
        ),
        (
            "leaderboard:about",
            ["점수 계산 방법", "점수를 재현하는 방법", "데이터셋 미러", "측정하는 것"],
            ["How the numbers are computed", "How to reproduce a score", "Dataset mirror", "What it measures"],
        ),
        (
            "leaderboard:submit",
            ["모델 제출", "모델 경로", "베이스 모델 경로", "검증 후 대기열에 추가"],
            ["Submit a model", "Model path", "Base model path", "Validate and queue"],
        ),
        ("leaderboard:metrics_through_time", ["그릴 모델", "그리기"], ["Models to draw", ">Draw<"]),
        ("runs:queue", ["아직 실행이 없습니다.", "소요 시간", "사유"], ["No runs yet.", "Duration", "Reason"]),
        (
            "evaluator:index",
            ["골든 데이터셋", "LLM 엔드포인트", "최근 평가"],
            ["Golden datasets", "LLM endpoints", "Recent evaluations"],
        ),
        (
            "evaluator:dataset_new",
            ["골든 데이터셋 등록", "파일 형식 안내"],
            ["Register a golden dataset", "What the file should look like"],
        ),
        ("evaluator:endpoint_new", ["LLM 엔드포인트 등록"], ["Register an LLM endpoint"]),
        ("evaluator:run_new", ["평가 대상 모델", "판정 LLM"], ["Model under test", "Judge LLM"]),
    ],
)
def test_pages_speak_korean(user_client, url_name, korean, english):
    user_client.cookies["django_language"] = "ko"
    response = user_client.get(reverse(url_name))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="ko">' in html
    for text in NAV_KO + korean:
        assert text in html, f"{url_name}: missing {text!r}"
    for text in NAV_EN + english:
        assert text not in html, f"{url_name}: still English {text!r}"


@pytest.mark.parametrize("path", ["/", "/about/", "/submit/", "/runs/"])
def test_accept_language_header_picks_korean(user_client, path):
    html = user_client.get(path, HTTP_ACCEPT_LANGUAGE="ko-KR,ko;q=0.9,en;q=0.5").content.decode()
    assert '<html lang="ko">' in html
    assert all(text in html for text in NAV_KO)
    assert not any(text in html for text in NAV_EN)


def test_english_stays_the_default(user_client):
    html = user_client.get(reverse("leaderboard:about"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="en">' in html
    assert "How the numbers are computed" in html and "점수 계산 방법" not in html
    assert all(text in html for text in NAV_EN)


def test_language_switch_remembers_korean(user_client):
    response = user_client.post(reverse("set_language"), {"language": "ko", "next": reverse("leaderboard:index")})
    assert response.status_code == 302
    assert "프라이빗 LLM 리더보드" in user_client.get(reverse("leaderboard:index")).content.decode()
