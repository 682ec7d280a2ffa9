"""Korean is complete: every message translated with the same placeholders, compiled, and used by the pages."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import user_create

LOCALE = Path(__file__).resolve().parents[1] / "locale" / "ko" / "LC_MESSAGES"
PLACEHOLDER = re.compile(r"%\(\w+\)\d*[sd]|%%|%[sd]")


def _po_entries(path: Path) -> list[dict]:
    """msgid / msgid_plural / msgstr[...] / flags of each entry of a .po file (enough of the format for this check)."""
    entries, current, field = [], None, None
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if current:
                entries.append(current)
            current, field = None, None
            continue
        current = current or {"flags": "", "msgid": "", "msgid_plural": None, "msgstr": {}}
        if line.startswith("#,"):
            current["flags"] += line
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            text = line[1:-1].encode().decode("unicode_escape").encode("latin-1").decode("utf-8")
            if isinstance(field, tuple):
                current["msgstr"][field[1]] += text
            else:
                current[field] += text
        else:
            keyword, value = line.split(" ", 1)
            text = value[1:-1].encode().decode("unicode_escape").encode("latin-1").decode("utf-8")
            if keyword.startswith("msgstr"):
                index = int(keyword[7:-1]) if "[" in keyword else 0
                field = ("msgstr", index)
                current["msgstr"][index] = text
            else:
                field = keyword
                current[keyword] = text
    return [entry for entry in entries if entry["msgid"]]  # the header has an empty msgid


def test_every_korean_message_is_translated_with_its_placeholders():
    entries = _po_entries(LOCALE / "django.po")
    assert len(entries) > 200
    for entry in entries:
        assert "fuzzy" not in entry["flags"], entry["msgid"]
        for translated in entry["msgstr"].values():
            assert translated.strip(), f"untranslated: {entry['msgid']!r}"
            source = entry["msgid_plural"] or entry["msgid"]
            assert set(PLACEHOLDER.findall(translated)) == set(PLACEHOLDER.findall(source)), entry["msgid"]


def test_compiled_catalogue_is_up_to_date():
    po, mo = LOCALE / "django.po", LOCALE / "django.mo"
    assert mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime - 1, "run manage.py compilemessages -l ko"


@pytest.mark.django_db
@pytest.mark.parametrize(("url_name", "korean", "english"), [
    ("leaderboard:index", "LLM 벤치마크", "Export CSV"),
    ("leaderboard:about", "점수 계산 방법", "How the numbers are computed"),
    ("leaderboard:submit", "모델 제출", "Submit a model"),
    ("leaderboard:metrics_through_time", "그릴 모델", "Models to draw"),
    ("runs:queue", "아직 실행이 없습니다.", "No runs yet."),
    ("evaluator:index", "골든 데이터셋", "Golden datasets"),
    ("evaluator:dataset_new", "골든 데이터셋 등록", "Register a golden dataset"),
    ("evaluator:endpoint_new", "LLM 엔드포인트 등록", "Register an LLM endpoint"),
    ("evaluator:run_new", "평가 대상 모델", "Model under test"),
])
def test_pages_speak_korean(client, url_name, korean, english):
    client.force_login(user_create())
    client.cookies["django_language"] = "ko"
    html = client.get(reverse(url_name)).content.decode()
    assert korean in html and english not in html
    assert '<html lang="ko">' in html


@pytest.mark.django_db
def test_language_switch_remembers_korean(client):
    client.force_login(user_create())
    response = client.post(reverse("set_language"), {"language": "ko", "next": reverse("leaderboard:index")})
    assert response.status_code == 302
    assert "프라이빗 LLM 리더보드" in client.get(reverse("leaderboard:index")).content.decode()
