"""Russia's federal subjects, as the «Регион» lists of the cabinet show them.

Shared by both services: the region a customer picks at registration in the IdP is spelled
exactly as the billing accounts of the linking service spell it.


89 subjects under the Constitution as amended (including the Republic of Crimea, Sevastopol and
the four subjects added in 2022), by their official short names, in Russian alphabetical order.
A billing account lives in exactly one of them, and every region the service accepts must be
spelled exactly as here.
"""

from __future__ import annotations

import unicodedata

from elk_common.errors import InvalidValue

_ALPHABET = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
_RANK = {letter: index for index, letter in enumerate(_ALPHABET, start=1)}


def russian_sort_key(text: str) -> tuple[tuple[int, ...], str]:
    """Sort key of Russian dictionaries: «Ё» right after «Е», case ignored.

    Code-point order would put «ё» after «я» and every capital before every small letter.
    Anything that is not a Russian letter (spaces, dashes, brackets) sorts before the letters,
    as in a printed index; the text itself breaks the remaining ties deterministically.
    """
    folded = unicodedata.normalize("NFC", text).lower()
    return tuple(_RANK.get(char, 0) for char in folded), text


_SUBJECTS = (
    # Republics
    "Республика Адыгея",
    "Республика Алтай",
    "Республика Башкортостан",
    "Республика Бурятия",
    "Республика Дагестан",
    "Донецкая Народная Республика",
    "Республика Ингушетия",
    "Кабардино-Балкарская Республика",
    "Республика Калмыкия",
    "Карачаево-Черкесская Республика",
    "Республика Карелия",
    "Республика Коми",
    "Республика Крым",
    "Луганская Народная Республика",
    "Республика Марий Эл",
    "Республика Мордовия",
    "Республика Саха (Якутия)",
    "Республика Северная Осетия — Алания",
    "Республика Татарстан",
    "Республика Тыва",
    "Удмуртская Республика",
    "Республика Хакасия",
    "Чеченская Республика",
    "Чувашская Республика",
    # Krais
    "Алтайский край",
    "Забайкальский край",
    "Камчатский край",
    "Краснодарский край",
    "Красноярский край",
    "Пермский край",
    "Приморский край",
    "Ставропольский край",
    "Хабаровский край",
    # Oblasts
    "Амурская область",
    "Архангельская область",
    "Астраханская область",
    "Белгородская область",
    "Брянская область",
    "Владимирская область",
    "Волгоградская область",
    "Вологодская область",
    "Воронежская область",
    "Запорожская область",
    "Ивановская область",
    "Иркутская область",
    "Калининградская область",
    "Калужская область",
    "Кемеровская область — Кузбасс",
    "Кировская область",
    "Костромская область",
    "Курганская область",
    "Курская область",
    "Ленинградская область",
    "Липецкая область",
    "Магаданская область",
    "Московская область",
    "Мурманская область",
    "Нижегородская область",
    "Новгородская область",
    "Новосибирская область",
    "Омская область",
    "Оренбургская область",
    "Орловская область",
    "Пензенская область",
    "Псковская область",
    "Ростовская область",
    "Рязанская область",
    "Самарская область",
    "Саратовская область",
    "Сахалинская область",
    "Свердловская область",
    "Смоленская область",
    "Тамбовская область",
    "Тверская область",
    "Томская область",
    "Тульская область",
    "Тюменская область",
    "Ульяновская область",
    "Херсонская область",
    "Челябинская область",
    "Ярославская область",
    # Cities of federal significance
    "Москва",
    "Санкт-Петербург",
    "Севастополь",
    # Autonomous oblast and okrugs
    "Еврейская автономная область",
    "Ненецкий автономный округ",
    "Ханты-Мансийский автономный округ — Югра",
    "Чукотский автономный округ",
    "Ямало-Ненецкий автономный округ",
)

REGIONS: tuple[str, ...] = tuple(sorted(_SUBJECTS, key=russian_sort_key))

_REGION_SET = frozenset(REGIONS)


def check_region(name: object) -> str:
    """Return the region as listed, or raise ``InvalidValue`` (field ``region``).

    Surrounding whitespace is dropped and the text NFC-normalised (so a decomposed «й» still
    matches); nothing else is forgiven: «Пермский» or «Perm» is not a region.
    """
    if not isinstance(name, str):
        raise InvalidValue("a region is a federal subject of Russia", field="region")
    value = unicodedata.normalize("NFC", name.strip())
    if value not in _REGION_SET:
        raise InvalidValue("a region is a federal subject of Russia", field="region")
    return value
